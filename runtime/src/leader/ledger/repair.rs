//! Repairs: a task whose input is corrupt or missing is parked while the task that
//! made the input runs again (steps 5 and 7 of the life of a task in [`super`]).

use std::time::Instant;

use super::{Attempt, Effect, Failure, JobLedger, Purpose};
use crate::task::{Task, TaskKind};

impl JobLedger {
    /// Wrap could not read `uri` (the root or a leaf): recompute it, then wrap again.
    pub fn on_wrap_input_unusable(&mut self, uri: &str, message: &str, now: Instant) -> Vec<Effect> {
        let fail = |message: String| {
            vec![Effect::Fail(Failure::TaskFailed { task: "wrap".into(), attempts: 1, message })]
        };
        let Some(producer) = self.producers.get(uri).cloned() else {
            return self
                .settle(fail(format!("{message}; no task produced {uri}, so it cannot be recomputed")));
        };
        if self.root.is_none() || self.wrap_repairs >= self.policy.max_attempts {
            let message =
                format!("{message}; wrap's inputs were repaired {} time(s) already", self.wrap_repairs);
            return self.settle(fail(message));
        }
        let Some(task) = self.repair_task(&producer) else {
            let message = format!(
                "{message}; the journal does not say what {producer} folded, so it cannot be recomputed"
            );
            return self.settle(fail(message));
        };
        tracing::warn!(job = %self.who.job, artifact = uri, producer = %producer,
            "{message}; recomputing it, then wrapping again");
        self.over = false;
        self.wrap_repairs += 1;
        self.stats.repairs += 1;
        self.rewrap_after = Some(producer);
        let mut fx = Vec::new();
        self.dispatch(task, Purpose::Repair { waiting: Vec::new() }, now, &mut fx);
        fx
    }

    /// The next attempt of finished task `id`, with a fresh budget of attempts; `None`
    /// if it is an aggregation whose inputs the journal did not record.
    pub(super) fn repair_task(&self, id: &str) -> Option<Task> {
        let done = self.done.get(id)?;
        if done.task.kind == TaskKind::Aggregate && done.task.inputs.len() != 2 {
            return None;
        }
        let mut task = done.task.clone();
        // A fresh budget of attempts, numbered after every earlier one.
        task.attempt += 1;
        task.max_attempts = task.attempt + self.policy.max_attempts - 1;
        Some(task)
    }

    /// `consumer` could not use its input `uri`: run the task that made it again.
    pub(super) fn repair(
        &mut self,
        consumer: &str,
        uri: &str,
        message: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if !self.out[consumer].task.inputs.iter().any(|i| i.uri == uri) {
            let why = format!("{message} (an artifact it does not read: {uri})");
            if self.redispatch(consumer, &why, now, fx) {
                self.stats.retries += 1;
            }
            return;
        }
        let Some(producer) = self.producers.get(uri).cloned() else {
            let attempts = self.out[consumer].task.attempt;
            let message =
                format!("{message}; no task produced it (a plan payload), so it cannot be recomputed");
            fx.push(Effect::Fail(Failure::TaskFailed { task: consumer.to_owned(), attempts, message }));
            return;
        };
        if producer == consumer {
            let attempts = self.out[consumer].task.attempt;
            let message = format!("{message}; the task reads its own output");
            fx.push(Effect::Fail(Failure::TaskFailed { task: consumer.to_owned(), attempts, message }));
            return;
        }
        tracing::warn!(job = %self.who.job, task = consumer, artifact = uri, producer = %producer, "{message}; recomputing it");
        self.stats.repairs += 1;
        self.out.get_mut(consumer).expect("caller checked").parked_on = Some(producer.clone());
        if let Some(Attempt { purpose: Purpose::Repair { waiting }, .. }) = self.out.get_mut(&producer) {
            waiting.push(consumer.to_owned());
            return;
        }
        let Some(task) = self.repair_task(&producer) else {
            let attempts = self.out[consumer].task.attempt;
            let message = format!(
                "{message}; the journal does not say what {producer} folded, so it cannot be recomputed"
            );
            fx.push(Effect::Fail(Failure::TaskFailed { task: consumer.to_owned(), attempts, message }));
            return;
        };
        self.dispatch(task, Purpose::Repair { waiting: vec![consumer.to_owned()] }, now, fx);
    }
}
