//! Starting a job: a fresh one, or one resumed from what an earlier leader journalled.

use std::time::Instant;

use super::repair::split_named;
use super::{Done, Effect, JobLedger, KeyMap, task_kind};
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
        for &key in latest.keys() {
            if key.1 == key.0 + 1 {
                self.progress.segments_done += 1;
                self.progress.cost_done += self.segments.cost(key.0 as usize);
            } else {
                self.progress.aggregations_done += 1;
            }
        }
        self.stats.resumed_segments = self.progress.segments_done;
        let records: Vec<Record> = latest.into_values().collect();
        let mut next = 0;
        // The fold starts from the maximal ranges: only their records are held; what
        // they cover is read back from the journal if a repair needs it.
        for r in maximal_ranges(&records) {
            let key = (r.start, r.end);
            // An aggregation can be run again only if the journal names its children.
            let split = split_named(key, &r.children);
            self.done.insert(key, Done { artifact: r.artifact.clone(), attempt: r.attempt, split });
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
            self.ready_cost += self.segments.cost_of(a as usize..b as usize);
        }
        self.settle(fx)
    }
}
