//! Tasks going out: the ready queue, sending, re-sending, and the timeline's spans.
//!
//! A [`Task`] is made each time one is published, from the ledger's own records (the
//! plan's payload for a segment, the children's artifacts in `done` for an
//! aggregation), and handed over: the ledger keeps no copy.

use std::time::Instant;

use super::{Attempt, Effect, Failure, JobLedger, Key, Purpose, id_of, kind_of};
use crate::leader::timeline::{Span, SpanEnd, SpanKind};
use crate::task::{ArtifactRef, Task, TaskKind};

impl JobLedger {
    /// Send `key`'s task again as its next attempt (true), or fail the job if its
    /// attempts are spent (false).
    pub(super) fn redispatch(&mut self, key: Key, why: &str, now: Instant, fx: &mut Vec<Effect>) -> bool {
        let Some(a) = self.out.get_mut(&key) else { return false };
        if a.attempt >= a.max_attempts {
            let attempts = a.attempt;
            fx.push(Effect::Fail(Failure::TaskFailed {
                task: id_of(key),
                attempts,
                message: why.to_owned(),
            }));
            return false;
        }
        a.attempt += 1;
        a.last_heard = now;
        a.sent = now;
        a.running_since = None;
        a.lane = None;
        let (split, attempt, max_attempts) = (a.split, a.attempt, a.max_attempts);
        tracing::warn!(job = %self.who.job, task = %id_of(key), attempt, reason = why, "re-dispatching");
        fx.push(Effect::Publish(self.task_of(key, split, attempt, max_attempts)));
        true
    }

    /// An aggregation of the fold is ready: it waits for [`JobLedger::release`], ahead
    /// of every segment (aggregations are what finishes the job).
    pub(super) fn ready_aggregation(&mut self, key: Key, split: u32) {
        self.ready_cost += self.cost_of(key);
        self.ready.push_front((key, split));
    }

    /// Publish `attempt` of `key`'s task, and keep track of it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn send(
        &mut self,
        key: Key,
        split: u32,
        attempt: u32,
        max_attempts: u32,
        purpose: Purpose,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let task = self.task_of(key, split, attempt, max_attempts);
        self.out_cost += task.cost;
        let sent = Attempt {
            split,
            cost: task.cost,
            attempt,
            max_attempts,
            purpose,
            last_heard: now,
            sent: now,
            running_since: None,
            lane: None,
            parked_on: None,
        };
        self.out.insert(key, sent);
        if kind_of(key) == TaskKind::Segment {
            self.segment_out(key.0);
        }
        fx.push(Effect::Publish(task));
    }

    /// The next segment not yet created, if any.
    pub(super) fn next_todo(&mut self) -> Option<u32> {
        let range = self.todo.front_mut()?;
        let i = range.0;
        range.0 += 1;
        if range.0 == range.1 {
            self.todo.pop_front();
        }
        self.todo_len -= 1;
        Some(i)
    }

    /// The cost estimate of `key`'s task: the plan's for a segment, 1 for an aggregation.
    pub(super) fn cost_of(&self, key: Key) -> u64 {
        match kind_of(key) {
            TaskKind::Segment => self.segments.cost(key.0 as usize),
            TaskKind::Aggregate => 1,
        }
    }

    /// The inputs `key`'s task reads: its payload, or its children's artifacts as last
    /// finished (repaired ones included). Empty if a child is unknown.
    pub(super) fn inputs_of(&self, key: Key, split: u32) -> Vec<ArtifactRef> {
        match kind_of(key) {
            // Loaded: a segment goes out only from a loaded page, which stays while it is out.
            TaskKind::Segment => {
                vec![
                    self.segments
                        .payload(key.0 as usize)
                        .expect("a segment's page is loaded while it is out"),
                ]
            }
            TaskKind::Aggregate => [(key.0, split), (split, key.1)]
                .iter()
                .map(|child| self.done.get(child).map(|d| d.artifact.clone()))
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
        }
    }

    /// `attempt` of the task over `key`, as it travels.
    pub(super) fn task_of(&self, key: Key, split: u32, attempt: u32, max_attempts: u32) -> Task {
        let kind = kind_of(key);
        let cost = self.cost_of(key);
        let timeout = (self.policy.timeout_of)(kind, cost);
        Task {
            job: self.who.job.clone(),
            run: self.who.run,
            id: id_of(key),
            kind,
            plugin: self.who.plugin.clone(),
            inputs: self.inputs_of(key, split),
            start: key.0,
            end: key.1,
            attempt,
            max_attempts,
            deadline_ms: timeout.as_millis().min(u64::MAX as u128) as u64,
            cost,
            reply_to: self.who.reply_to.clone(),
        }
    }

    /// Record that `attempt` of the task over `key` ran on `lane` from `start` to `now`
    /// (only when a timeline is recorded).
    pub(super) fn span(
        &mut self,
        key: Key,
        attempt: u32,
        lane: &str,
        start: Instant,
        now: Instant,
        outcome: SpanEnd,
    ) {
        let (Some(spans), Some(began)) = (self.spans.as_mut(), self.began) else { return };
        spans.push(Span {
            task: id_of(key),
            kind: match kind_of(key) {
                TaskKind::Segment => SpanKind::Segment,
                TaskKind::Aggregate => SpanKind::Aggregate,
            },
            first: key.0,
            end: key.1,
            attempt,
            lane: lane.to_owned(),
            start: start.saturating_duration_since(began),
            finish: now.saturating_duration_since(began),
            outcome,
        });
    }
}
