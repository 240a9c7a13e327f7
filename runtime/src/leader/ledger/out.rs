//! Tasks going out: the ready queue, sending, re-sending, and the timeline's spans.

use std::time::Instant;

use super::{Attempt, Effect, Failure, JobLedger, Purpose};
use crate::leader::timeline::{Span, SpanEnd, SpanKind};
use crate::task::{ArtifactRef, Task, TaskKind};

impl JobLedger {
    /// Send `id` again as its next attempt (true), or fail the job if its attempts
    /// are spent (false).
    pub(super) fn redispatch(&mut self, id: &str, why: &str, now: Instant, fx: &mut Vec<Effect>) -> bool {
        let Some(a) = self.out.get_mut(id) else { return false };
        if a.task.attempt >= a.task.max_attempts {
            let attempts = a.task.attempt;
            fx.push(Effect::Fail(Failure::TaskFailed {
                task: id.to_owned(),
                attempts,
                message: why.to_owned(),
            }));
            return false;
        }
        a.task.attempt += 1;
        a.last_heard = now;
        a.sent = now;
        a.running_since = None;
        a.lane = None;
        tracing::warn!(job = %self.who.job, task = id, attempt = a.task.attempt, reason = why, "re-dispatching");
        fx.push(Effect::Publish(a.task.clone()));
        true
    }

    /// A new task: a repair goes out at once; a fold task waits in the ready queue,
    /// aggregations ahead of segments (they are what finishes the job).
    pub(super) fn dispatch(&mut self, task: Task, purpose: Purpose, now: Instant, fx: &mut Vec<Effect>) {
        match (&purpose, task.kind) {
            (Purpose::Repair { .. }, _) => self.send(task, purpose, now, fx),
            (Purpose::Fold, TaskKind::Aggregate) => {
                self.ready_cost += task.cost;
                self.ready.push_front(task)
            }
            (Purpose::Fold, TaskKind::Segment) => {
                self.ready_cost += task.cost;
                self.ready.push_back(task)
            }
        }
    }

    pub(super) fn send(&mut self, task: Task, purpose: Purpose, now: Instant, fx: &mut Vec<Effect>) {
        let attempt = Attempt {
            task: task.clone(),
            purpose,
            last_heard: now,
            sent: now,
            running_since: None,
            lane: None,
            parked_on: None,
        };
        self.out_cost += task.cost;
        self.out.insert(task.id.clone(), attempt);
        fx.push(Effect::Publish(task));
    }

    /// Record that an attempt of `task` ran on `lane` from `start` to `now`.
    pub(super) fn span(&mut self, task: &Task, lane: &str, start: Instant, now: Instant, outcome: SpanEnd) {
        let (Some(spans), Some(began)) = (self.spans.as_mut(), self.began) else { return };
        spans.push(Span {
            task: task.id.clone(),
            kind: match task.kind {
                TaskKind::Segment => SpanKind::Segment,
                TaskKind::Aggregate => SpanKind::Aggregate,
            },
            first: task.start,
            end: task.end,
            attempt: task.attempt,
            lane: lane.to_owned(),
            start: start.saturating_duration_since(began),
            finish: now.saturating_duration_since(began),
            outcome,
        });
    }

    pub(super) fn new_task(
        &self,
        id: String,
        kind: TaskKind,
        inputs: Vec<ArtifactRef>,
        range: (u32, u32),
    ) -> Task {
        let cost = match kind {
            TaskKind::Segment => self.segments[range.0 as usize].cost,
            TaskKind::Aggregate => 1,
        };
        let timeout = (self.policy.timeout_of)(kind, cost);
        Task {
            job: self.who.job.clone(),
            run: self.who.run,
            id,
            kind,
            plugin: self.who.plugin.clone(),
            inputs,
            start: range.0,
            end: range.1,
            attempt: 1,
            max_attempts: self.policy.max_attempts,
            deadline_ms: timeout.as_millis().min(u64::MAX as u128) as u64,
            cost,
            reply_to: self.who.reply_to.clone(),
        }
    }
}
