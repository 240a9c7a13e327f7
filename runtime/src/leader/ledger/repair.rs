//! Repairs: a task whose input is corrupt or missing is parked while the task that
//! made the input runs again (steps 5 and 7 of the life of a task in [`super`]).
//!
//! Who made an input follows from the fold, not from a table of artifacts: an
//! aggregation over `a..b` split at `s` reads the outputs of the tasks over `a..s` and
//! `s..b`; wrap reads the root (the task over `0..n`) and the leaves (`seg-i`); a
//! segment reads a plan payload, which no task made.
//!
//! # Repairing what the ledger let go
//! The ledger keeps a finished task only while the fold still needs its output: once an
//! aggregation over a range finishes, the records of its two children live in the
//! journal alone. A repair that needs one of them (the producer itself, or an
//! aggregation's children, whose artifacts it reads):
//! 1. waits in `recalling` and emits [`Effect::Recall`] for the missing ranges;
//! 2. [`JobLedger::on_recalled`] takes the records back in, and the repair goes out, or
//!    asks once more (an aggregation read back names children that are missing too);
//! 3. a range the journal has no record of, after it was asked for, fails the job
//!    naming it: nothing else could recompute that input.
//!
//! A segment's repair also needs its payload: if its page of the plan was let go, it
//! waits the same way for [`Effect::LoadSegments`] (see `pages`).

use std::time::Instant;

use super::{Attempt, Done, Effect, Failure, JobLedger, Key, Purpose, id_of, key_of, kind_of};
use crate::leader::journal::Record;
use crate::task::TaskKind;

/// A repair waiting for records read back from the journal.
#[derive(Debug)]
pub(super) struct Recalling {
    producer: Key,
    purpose: Purpose,
    /// Who fails if the repair cannot be made (the first consumer, or `wrap`), and why
    /// it needed one.
    blame: String,
    cause: String,
    /// Ranges already asked for: asked twice means the journal does not have them.
    asked: Vec<Key>,
}

/// What a repair of a finished task needs first.
enum Prepared {
    /// `(split, attempt, max_attempts)`: it can go out now.
    Ready(u32, u32, u32),
    /// These finished tasks' records are in the journal only.
    Recall(Vec<Key>),
    /// A segment whose page of the plan is not loaded.
    Load(usize),
    /// It cannot be recomputed, for this reason.
    Impossible(String),
}

impl JobLedger {
    /// Wrap could not read `uri`: the root, or leaf `leaf` (`seg-leaf`'s artifact).
    /// Recompute it, then wrap again.
    pub fn on_wrap_input_unusable(
        &mut self,
        uri: &str,
        leaf: Option<u32>,
        message: &str,
        now: Instant,
    ) -> Vec<Effect> {
        let fail = |message: String| {
            vec![Effect::Fail(Failure::TaskFailed { task: "wrap".into(), attempts: 1, message })]
        };
        let n = self.segments.len() as u32;
        let producer = if self.root.as_ref().is_some_and(|r| r.uri == uri) {
            (0, n)
        } else {
            match leaf.filter(|&i| i < n) {
                Some(i) => (i, i + 1),
                None => {
                    let message = format!("{message}; no task produced {uri}, so it cannot be recomputed");
                    return self.settle(fail(message));
                }
            }
        };
        if self.root.is_none() || self.wrap_repairs >= self.policy.max_attempts {
            let message =
                format!("{message}; wrap's inputs were repaired {} time(s) already", self.wrap_repairs);
            return self.settle(fail(message));
        }
        tracing::warn!(job = %self.who.job, artifact = uri, producer = %id_of(producer),
            "{message}; recomputing it, then wrapping again");
        self.over = false;
        self.wrap_repairs += 1;
        self.stats.repairs += 1;
        self.rewrap_after = Some(producer);
        let mut fx = Vec::new();
        let purpose = Purpose::Repair { waiting: Vec::new() };
        self.start_repair(producer, purpose, ("wrap".into(), message), now, &mut fx);
        self.settle(fx)
    }

    /// The records asked for with [`Effect::Recall`], read back from the journal (those
    /// it has): the repairs waiting for them go out.
    pub fn on_recalled(&mut self, records: Vec<Record>, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.over {
            return fx;
        }
        for r in records {
            let key = (r.start, r.end);
            if r.end as usize > self.segments.len() || key_of(&r.task) != Some(key) {
                continue;
            }
            let split = split_named(key, &r.children);
            self.done.entry(key).or_insert(Done { artifact: r.artifact, attempt: r.attempt, split });
        }
        self.retry_recalling(now, &mut fx);
        self.settle(fx)
    }

    /// Send the repairs waiting for records or pages that are now back, ask again for
    /// what is still missing, or fail the job naming what cannot be had.
    pub(super) fn retry_recalling(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        for waiting in std::mem::take(&mut self.recalling) {
            if !self.advance(waiting, now, fx) {
                return;
            }
        }
    }

    /// Run finished task `producer` again for `purpose`, now or once what it needs is
    /// read back; `blame` fails (saying `cause`) if it cannot be.
    fn start_repair(
        &mut self,
        producer: Key,
        purpose: Purpose,
        (blame, cause): (String, &str),
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let waiting = Recalling { producer, purpose, blame, cause: cause.to_owned(), asked: Vec::new() };
        self.advance(waiting, now, fx);
    }

    /// Send `waiting`'s repair, or ask for what it needs and keep it waiting; false if
    /// it cannot be made (the job fails).
    fn advance(&mut self, mut waiting: Recalling, now: Instant, fx: &mut Vec<Effect>) -> bool {
        let fail = |waiting: Recalling, why: String| {
            let message = format!("{}; {why}", waiting.cause);
            Effect::Fail(Failure::TaskFailed { task: waiting.blame, attempts: 1, message })
        };
        match self.prepare(waiting.producer) {
            Prepared::Ready(split, attempt, max_attempts) => {
                self.send(waiting.producer, split, attempt, max_attempts, waiting.purpose, now, fx);
                true
            }
            // Asked for already: the journal does not have it.
            Prepared::Recall(keys) if keys.iter().all(|k| waiting.asked.contains(k)) => {
                let names = keys.iter().map(|&k| id_of(k)).collect::<Vec<_>>().join(", ");
                let why = format!(
                    "recomputing {} needs {names}, which the job journal has no record of",
                    id_of(waiting.producer)
                );
                fx.push(fail(waiting, why));
                false
            }
            Prepared::Recall(keys) => {
                waiting.asked.extend(&keys);
                fx.push(Effect::Recall(keys));
                self.recalling.push(waiting);
                true
            }
            Prepared::Load(page) => {
                self.ask_for_page(page, fx);
                self.recalling.push(waiting);
                true
            }
            Prepared::Impossible(why) => {
                fx.push(fail(waiting, why));
                false
            }
        }
    }

    /// What running finished task `key` again needs: a fresh budget of attempts
    /// numbered after every earlier one, and its own and (for an aggregation) its
    /// children's records.
    fn prepare(&self, key: Key) -> Prepared {
        let Some(done) = self.done.get(&key) else { return Prepared::Recall(vec![key]) };
        if kind_of(key) == TaskKind::Segment {
            let page = self.segments.page_of(key.0 as usize);
            if !self.segments.is_loaded(page) {
                return Prepared::Load(page);
            }
        } else {
            if done.split == 0 {
                return Prepared::Impossible(format!(
                    "the journal does not say what {} folded, so it cannot be recomputed",
                    id_of(key)
                ));
            }
            let missing: Vec<Key> = [(key.0, done.split), (done.split, key.1)]
                .into_iter()
                .filter(|child| !self.done.contains_key(child))
                .collect();
            if !missing.is_empty() {
                return Prepared::Recall(missing);
            }
        }
        let attempt = done.attempt + 1;
        Prepared::Ready(done.split, attempt, attempt + self.policy.max_attempts - 1)
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
        // Already being recomputed (or read back for that): wait for the same repair.
        let pending = match self.out.get_mut(&producer) {
            Some(Attempt { purpose: Purpose::Repair { waiting }, .. }) => Some(waiting),
            _ => self.recalling.iter_mut().find(|r| r.producer == producer).and_then(|r| {
                match &mut r.purpose {
                    Purpose::Repair { waiting } => Some(waiting),
                    Purpose::Fold => None,
                }
            }),
        };
        if let Some(waiting) = pending {
            waiting.push(consumer);
            return;
        }
        let purpose = Purpose::Repair { waiting: vec![consumer] };
        self.start_repair(producer, purpose, (id_of(consumer), message), now, fx);
    }
}

/// The split point of the aggregation over `key` whose record names `children`; 0 if
/// they are not its two halves (a segment, or a journal that did not name them).
pub(super) fn split_named(key: Key, children: &[String]) -> u32 {
    match children {
        [left, right] => match (key_of(left), key_of(right)) {
            (Some(l), Some(r)) if l.0 == key.0 && l.1 == r.0 && r.1 == key.1 => l.1,
            _ => 0,
        },
        _ => 0,
    }
}
