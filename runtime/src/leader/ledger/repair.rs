//! Repairs: a task whose input is corrupt or missing is parked while the task that
//! made the input runs again (steps 5 and 7 of the life of a task in [`super`]).
//!
//! Who made an input follows from the fold, not from a table of artifacts: an
//! aggregation over `a..b` split at `s` reads the outputs of the tasks over `a..s` and
//! `s..b`; wrap reads the root (the task over `0..n`) and the leaves (`seg-i`); a
//! segment reads a plan payload, which no task made.

use std::time::Instant;

use super::{Attempt, Effect, Failure, JobLedger, Key, Purpose, id_of, kind_of};
use crate::task::TaskKind;

impl JobLedger {
    /// Wrap could not read `uri` (the root or a leaf): recompute it, then wrap again.
    pub fn on_wrap_input_unusable(&mut self, uri: &str, message: &str, now: Instant) -> Vec<Effect> {
        let fail = |message: String| {
            vec![Effect::Fail(Failure::TaskFailed { task: "wrap".into(), attempts: 1, message })]
        };
        let Some(producer) = self.wrap_input_producer(uri) else {
            return self
                .settle(fail(format!("{message}; no task produced {uri}, so it cannot be recomputed")));
        };
        if self.root.is_none() || self.wrap_repairs >= self.policy.max_attempts {
            let message =
                format!("{message}; wrap's inputs were repaired {} time(s) already", self.wrap_repairs);
            return self.settle(fail(message));
        }
        let Some((split, attempt, max_attempts)) = self.repair_of(producer) else {
            let message = format!(
                "{message}; the journal does not say what {} folded, so it cannot be recomputed",
                id_of(producer)
            );
            return self.settle(fail(message));
        };
        tracing::warn!(job = %self.who.job, artifact = uri, producer = %id_of(producer),
            "{message}; recomputing it, then wrapping again");
        self.over = false;
        self.wrap_repairs += 1;
        self.stats.repairs += 1;
        self.rewrap_after = Some(producer);
        let mut fx = Vec::new();
        let purpose = Purpose::Repair { waiting: Vec::new() };
        self.send(producer, split, attempt, max_attempts, purpose, now, &mut fx);
        fx
    }

    /// The finished task whose artifact wrap read as `uri`: the root, or a leaf.
    fn wrap_input_producer(&self, uri: &str) -> Option<Key> {
        let n = self.segments.len() as u32;
        if self.root.as_ref().is_some_and(|r| r.uri == uri) {
            return Some((0, n));
        }
        (0..n).map(|i| (i, i + 1)).find(|k| self.done.get(k).is_some_and(|d| d.artifact.uri == uri))
    }

    /// How finished task `key` runs again: `(split, attempt, max_attempts)`, with a fresh
    /// budget of attempts numbered after every earlier one; `None` if it is an
    /// aggregation whose children the journal did not record.
    pub(super) fn repair_of(&self, key: Key) -> Option<(u32, u32, u32)> {
        let done = self.done.get(&key)?;
        if kind_of(key) == TaskKind::Aggregate && self.inputs_of(key, done.split).len() != 2 {
            return None;
        }
        let attempt = done.attempt + 1;
        Some((done.split, attempt, attempt + self.policy.max_attempts - 1))
    }

    /// `consumer` could not use its input `uri`: run the task that made it again.
    pub(super) fn repair(
        &mut self,
        consumer: Key,
        uri: &str,
        message: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let (split, attempts) = (self.out[&consumer].split, self.out[&consumer].attempt);
        let Some(input) = self.inputs_of(consumer, split).iter().position(|i| i.uri == uri) else {
            let why = format!("{message} (an artifact it does not read: {uri})");
            if self.redispatch(consumer, &why, now, fx) {
                self.stats.retries += 1;
            }
            return;
        };
        if kind_of(consumer) == TaskKind::Segment {
            let message =
                format!("{message}; no task produced it (a plan payload), so it cannot be recomputed");
            fx.push(Effect::Fail(Failure::TaskFailed { task: id_of(consumer), attempts, message }));
            return;
        }
        let producer = if input == 0 { (consumer.0, split) } else { (split, consumer.1) };
        tracing::warn!(job = %self.who.job, task = %id_of(consumer), artifact = uri, producer = %id_of(producer),
            "{message}; recomputing it");
        self.stats.repairs += 1;
        self.out.get_mut(&consumer).expect("caller checked").parked_on = Some(producer);
        if let Some(Attempt { purpose: Purpose::Repair { waiting }, .. }) = self.out.get_mut(&producer) {
            waiting.push(consumer);
            return;
        }
        let Some((split, attempt, max_attempts)) = self.repair_of(producer) else {
            let message = format!(
                "{message}; the journal does not say what {} folded, so it cannot be recomputed",
                id_of(producer)
            );
            fx.push(Effect::Fail(Failure::TaskFailed { task: id_of(consumer), attempts, message }));
            return;
        };
        let purpose = Purpose::Repair { waiting: vec![consumer] };
        self.send(producer, split, attempt, max_attempts, purpose, now, fx);
    }
}
