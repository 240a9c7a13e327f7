//! Starting a job: a fresh one, or one resumed from what an earlier leader journalled.

use std::time::Instant;

use super::{Done, Effect, JobLedger, KeyMap, key_of, task_kind};
use crate::fold::Finished;
use crate::leader::journal::{Record, maximal_ranges};

impl JobLedger {
    /// Begin: `records` are what an earlier leader of this job finished (empty for a
    /// new job). Every segment no finished range covers becomes ready.
    pub fn start(&mut self, records: Vec<Record>, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.began = Some(now);
        // A task journalled twice (its artifact was repaired) counts once, as last written.
        let mut latest: KeyMap<Record> = KeyMap::default();
        for r in records {
            let valid = (r.start < r.end) && (r.end as usize) <= self.segments.len();
            if valid && task_kind(&r.task, r.start, r.end).is_some() {
                latest.insert((r.start, r.end), r);
            } else {
                tracing::warn!(job = %self.who.job, task = %r.task, "journal record out of the plan's range ignored");
            }
        }
        for (&key, r) in &latest {
            // An aggregation can be run again only if the journal names both children
            // (their records hold the artifacts it folded).
            let split = match r.children.as_slice() {
                [left, right] => match (key_of(left), key_of(right)) {
                    (Some(l), Some(r))
                        if l.0 == key.0
                            && l.1 == r.0
                            && r.1 == key.1
                            && latest.contains_key(&l)
                            && latest.contains_key(&r) =>
                    {
                        l.1
                    }
                    _ => 0,
                },
                _ => 0,
            };
            if key.1 == key.0 + 1 {
                self.progress.segments_done += 1;
                self.progress.cost_done += self.segments[key.0 as usize].cost;
            } else {
                self.progress.aggregations_done += 1;
            }
            // A resumed task's attempts restart at 1; the journal does not keep them.
            self.done.insert(key, Done { artifact: r.artifact.clone(), attempt: 1, split });
        }
        self.stats.resumed_segments = self.progress.segments_done;
        let records: Vec<Record> = latest.into_values().collect();
        let mut next = 0;
        for r in maximal_ranges(&records) {
            if r.start > next {
                self.todo.push_back((next, r.start));
            }
            next = next.max(r.end);
            self.progress.depth = self.progress.depth.max(r.depth);
            self.fold_in(Finished { start: r.start, end: r.end, depth: r.depth, value: r.artifact }, &mut fx);
        }
        let n = self.segments.len() as u32;
        if next < n {
            self.todo.push_back((next, n));
        }
        for &(a, b) in &self.todo {
            self.todo_len += (b - a) as usize;
            self.ready_cost += self.segments[a as usize..b as usize].iter().map(|s| s.cost).sum::<u64>();
        }
        self.settle(fx)
    }
}
