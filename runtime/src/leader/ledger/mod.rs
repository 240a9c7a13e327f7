//! The job's bookkeeping as a pure state machine: events in, effects out.
//!
//! [`JobLedger`] knows which tasks are out, which finished, what the fold waits for and
//! what is being repaired. It performs no I/O and reads no clock: every event carries
//! `now`, and every decision comes back as an [`Effect`] for the job actor to carry
//! out. That makes each failure path a plain unit test.
//!
//! # Life of a task
//! 1. **Dispatch.** The ledger creates the task (id, kind, range and inputs come from
//!    the plan or the fold, never from a message) and queues it as *ready*
//!    (aggregations ahead of segments). [`JobLedger::release`] takes ready tasks out
//!    and emits [`Effect::Publish`]: how many is the leader's [`scheduler`] decision,
//!    shared among jobs. Repairs and re-dispatches go out at once. Segments not yet
//!    released are index ranges, not tasks: a task is made when it goes out (from a
//!    page of the plan loaded for it, see `pages`), so the ledger's memory follows
//!    the work in flight, not the plan's size.
//!
//! [`scheduler`]: super::scheduler
//! 2. **Heartbeats.** A worker reports [`Outcome::Running`] for the current attempt
//!    with how long it has been running. "The worker is alive" (any word within the
//!    silence deadline) is kept apart from "the attempt makes progress" (its run time
//!    stays under the task timeout).
//! 3. **Deadlines** (on [`JobLedger::on_tick`]): no word within `silence` re-dispatches
//!    the task; a run longer than its timeout emits [`Effect::Abandon`] (the worker
//!    cancels that attempt) and re-dispatches it.
//! 4. **Failure.** A retryable failure of the current attempt re-dispatches it; a
//!    permanent one, or a spent attempt budget, fails the job. Reports from older
//!    attempts are ignored, except a success: the first success wins, whichever
//!    attempt produced it.
//! 5. **Unusable input** (corrupt or missing artifact): the consumer is parked, the
//!    task that produced the artifact runs again as a *repair*, and only that repair's
//!    success (never its heartbeat) sends the consumer out again, with the repaired
//!    reference. An input no task produced (a plan payload) cannot be repaired.
//! 6. **Success.** The artifact is journalled ([`Effect::Journal`]) and folded; the
//!    fold's next aggregation is dispatched, and the root becomes [`Effect::Wrap`].
//!
//!    A finished task is kept only while the fold needs its output: once the
//!    aggregation over its range finishes, its record lives in the journal alone (so
//!    the ledger's memory follows the fold's frontier), and a repair that needs it
//!    reads it back first ([`Effect::Recall`], see `repair`).
//!
//! 7. **Wrap's inputs.** If wrap cannot read the root or a leaf (corrupt or missing),
//!    [`JobLedger::on_wrap_input_unusable`] repairs it like a task's input and emits
//!    `Wrap` again once the repair succeeded (at most `max_attempts` times).
//!
//! Once the ledger emits [`Effect::Fail`] or [`Effect::Wrap`] it is over and ignores
//! further events (until wrap reports an unusable input).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::journal::Record;
use super::segments::SegmentPages;
use super::timeline::{Span, SpanEnd};
use super::{JobStats, Progress};
use crate::fold::{Finished, Fold, FoldStep};
use crate::task::{ArtifactRef, Outcome, Task, TaskKind, TaskResult, aggregate_task_id, segment_task_id};

/// The task timeout of a task of this kind and cost.
pub type TimeoutOf = Box<dyn Fn(TaskKind, u64) -> Duration + Send>;

/// Who the job's tasks are from and where their results go.
#[derive(Clone, Debug)]
pub struct Identity {
    pub job: String,
    /// This run of the job (a fresh number per leader incarnation): cancellation is
    /// keyed by it, so a resumed job is never mistaken for its cancelled predecessor.
    pub run: u64,
    /// `name@version` of the plugin.
    pub plugin: String,
    pub reply_to: String,
}

/// The ledger's policies.
pub struct Policy {
    /// Dispatches of one task before the job fails.
    pub max_attempts: u32,
    /// No result and no heartbeat for this long: send the task again.
    pub silence: Duration,
    /// The longest one attempt may run, by kind and cost.
    pub timeout_of: TimeoutOf,
}

/// What the job actor must do, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub enum Effect {
    /// Record a finished task in the journal (before anything that depends on it).
    Journal(Record),
    /// Hand a task to the broker.
    Publish(Task),
    /// Tell workers to give up on this attempt of a task.
    Abandon { task: String, attempt: u32 },
    /// Read the records of the tasks over these ranges (`(start, end)`) back from the
    /// journal and hand them to [`JobLedger::on_recalled`]: a repair needs them.
    Recall(Vec<(u32, u32)>),
    /// Read this page of the plan's segments back from the store (the manifest's part
    /// of that number) and hand it to [`JobLedger::on_segments`].
    LoadSegments(usize),
    /// Every segment is folded into `root`: wrap it. The job's work is done.
    Wrap(ArtifactRef),
    /// The job cannot finish.
    Fail(Failure),
}

/// Why the ledger gave up on a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    #[error("task {task} failed after {attempts} attempt(s): {message}")]
    TaskFailed { task: String, attempts: u32, message: String },
    #[error("job cancelled: {0}")]
    Cancelled(String),
}

/// Why an attempt is overdue.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Overdue {
    RanTooLong(Duration),
    Silent,
}

/// Why a task is out.
#[derive(Debug)]
enum Purpose {
    /// Its output feeds the fold.
    Fold,
    /// It finished before; it runs again because its output was unusable. These
    /// consumers are parked until it is back.
    Repair { waiting: Vec<Key> },
}

/// A task's place in the fold, which names it: `seg-N` is `(N, N + 1)`, `agg-A-B` is
/// `(A, B + 1)` (see [`key_of`]). Maps keyed by it hold no strings.
pub(super) type Key = (u32, u32);

/// One task out with the workers. Its [`Task`] is made again from the ledger's own
/// records whenever it is (re)published, so nothing here copies it.
#[derive(Debug)]
struct Attempt {
    /// An aggregation's split point (its inputs are `start..split` and `split..end`);
    /// 0 for a segment.
    split: u32,
    cost: u64,
    /// The current attempt, and the last one allowed.
    attempt: u32,
    max_attempts: u32,
    purpose: Purpose,
    /// Last word of this attempt (dispatch, heartbeat).
    last_heard: Instant,
    /// When this attempt was published.
    sent: Instant,
    /// When the current attempt started running, as its worker reported.
    running_since: Option<Instant>,
    /// The lane that last reported on the current attempt.
    lane: Option<String>,
    /// Waiting for this producer's repair; not running anywhere meanwhile.
    parked_on: Option<Key>,
}

/// A task that finished, and what it made: enough to run it again as a repair (its
/// inputs are its segment's payload, or its children's artifacts, found by `split`).
#[derive(Debug)]
struct Done {
    artifact: ArtifactRef,
    /// Its last attempt: a repair is numbered after it.
    attempt: u32,
    /// As in [`Attempt::split`].
    split: u32,
}

/// The state of one job.
pub struct JobLedger {
    who: Identity,
    policy: Policy,
    segments: SegmentPages,
    /// Pages of segments asked for with [`Effect::LoadSegments`], not yet back.
    loading: std::collections::BTreeSet<usize>,
    /// Segments out with workers, by page: a page is let go when none are and every
    /// segment on it went out.
    out_on_page: std::collections::HashMap<usize, u32>,
    fold: Fold<ArtifactRef>,
    out: KeyMap<Attempt>,
    /// Aggregations ready, waiting for [`JobLedger::release`] (with their split); they
    /// go out before any segment.
    ready: VecDeque<(Key, u32)>,
    /// Segments not yet created, as index ranges in order: a segment's task is made
    /// only when it is released, so a million-segment job holds no million tasks.
    todo: VecDeque<Key>,
    /// Segments in `todo`.
    todo_len: usize,
    /// Summed cost of what is ready (`ready` and `todo`) and of `out`.
    ready_cost: u64,
    out_cost: u64,
    /// Queue waits (publish to start) seen since [`JobLedger::take_waits`].
    waits: Vec<(TaskKind, Duration)>,
    /// Finished tasks whose output the fold still needs (and any read back for a repair).
    done: KeyMap<Done>,
    /// Repairs waiting for records read back from the journal, or for a page of
    /// segments read back from the store.
    recalling: Vec<repair::Recalling>,
    progress: Progress,
    stats: JobStats,
    over: bool,
    /// The root last handed to wrap, and how often wrap's inputs had to be repaired.
    root: Option<ArtifactRef>,
    wrap_repairs: u32,
    /// Wrap runs again once this task's repair succeeded.
    rewrap_after: Option<Key>,
    /// When [`JobLedger::start`] ran: spans are timed from here.
    began: Option<Instant>,
    /// Every ended attempt, when a timeline is recorded.
    spans: Option<Vec<Span>>,
}

impl JobLedger {
    pub fn new(who: Identity, policy: Policy, segments: SegmentPages) -> Self {
        let n = segments.len() as u32;
        let progress = Progress {
            segments_total: n,
            aggregations_total: n.saturating_sub(1),
            cost_total: segments.cost_of(0..segments.len()),
            ..Progress::default()
        };
        Self {
            who,
            policy,
            fold: Fold::new(n),
            segments,
            loading: Default::default(),
            out_on_page: Default::default(),
            out: KeyMap::default(),
            ready: VecDeque::new(),
            todo: VecDeque::new(),
            todo_len: 0,
            ready_cost: 0,
            out_cost: 0,
            waits: Vec::new(),
            done: KeyMap::default(),
            recalling: Vec::new(),
            progress,
            stats: JobStats { segments: n, ..JobStats::default() },
            over: false,
            root: None,
            wrap_repairs: 0,
            rewrap_after: None,
            began: None,
            spans: None,
        }
    }

    /// Record a [`Span`] for every attempt that ends (see [`JobLedger::take_spans`]).
    pub fn with_timeline(mut self) -> Self {
        self.spans = Some(Vec::new());
        self
    }

    /// The spans recorded so far (empty without [`JobLedger::with_timeline`]).
    pub fn spans(&self) -> &[Span] {
        self.spans.as_deref().unwrap_or_default()
    }

    /// Tasks ready to be published, waiting for [`JobLedger::release`].
    pub fn ready_len(&self) -> usize {
        self.ready.len() + self.todo_len
    }

    /// Work not yet done: `(ready tasks, tasks out, ready cost, cost out)`, in the
    /// plugin's cost unit.
    pub fn outstanding(&self) -> (usize, usize, u64, u64) {
        (self.ready_len(), self.out.len(), self.ready_cost, self.out_cost)
    }

    /// Publish-to-start waits of attempts that started since the last call.
    pub fn take_waits(&mut self) -> Vec<(TaskKind, Duration)> {
        std::mem::take(&mut self.waits)
    }

    /// Publish up to `n` ready tasks (aggregations first, then segments in order).
    pub fn release(&mut self, n: usize, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.over {
            return fx;
        }
        for _ in 0..n {
            let (key, split) = match self.ready.pop_front() {
                Some(ready) => ready,
                None => match self.next_todo_loaded(&mut fx) {
                    Some(i) => ((i, i + 1), 0),
                    None => break,
                },
            };
            self.ready_cost -= self.cost_of(key);
            self.send(key, split, 1, self.policy.max_attempts, Purpose::Fold, now, &mut fx);
        }
        fx
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    pub fn stats(&self) -> JobStats {
        JobStats {
            aggregations: self.progress.aggregations_done,
            depth: self.progress.depth,
            ..self.stats.clone()
        }
    }

    /// Finished tasks the ledger holds: the fold's frontier, not the job's size.
    pub fn held(&self) -> usize {
        self.done.len()
    }

    /// Tasks out with workers now (parked ones included; ready ones not).
    pub fn in_flight(&self) -> usize {
        self.out.len()
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Take in results (and heartbeats) in arrival order.
    pub fn on_results(&mut self, results: Vec<TaskResult>, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.over {
            return fx;
        }
        for result in results {
            let from = fx.len();
            self.on_result(result, now, &mut fx);
            // Only this result's effects can end the job: no rescan of the whole batch.
            if ended(&fx[from..]) {
                break;
            }
        }
        self.settle(fx)
    }

    /// Look for attempts that went silent or ran too long.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.over {
            return fx;
        }
        // Find the overdue first (no clones for the rest), then act in a stable order.
        let mut overdue: Vec<(Key, Overdue)> = Vec::new();
        for (&key, a) in &self.out {
            if a.parked_on.is_some() {
                continue;
            }
            let timeout = (self.policy.timeout_of)(kind_of(key), a.cost);
            if a.running_since.is_some_and(|since| now.saturating_duration_since(since) > timeout) {
                overdue.push((key, Overdue::RanTooLong(timeout)));
            } else if now.saturating_duration_since(a.last_heard) > self.policy.silence {
                overdue.push((key, Overdue::Silent));
            }
        }
        overdue.sort();
        for (key, why) in overdue {
            let from = fx.len();
            if self.spans.is_some()
                && let Some(a) = self.out.get(&key)
                && let Some(since) = a.running_since
            {
                let outcome = match why {
                    Overdue::RanTooLong(_) => SpanEnd::TimedOut,
                    Overdue::Silent => SpanEnd::Lost,
                };
                let (attempt, lane) = (a.attempt, a.lane.clone().unwrap_or_else(|| "unknown".into()));
                self.span(key, attempt, &lane, since, now, outcome);
            }
            match why {
                Overdue::RanTooLong(timeout) => {
                    self.stats.timeouts += 1;
                    fx.push(Effect::Abandon { task: id_of(key), attempt: self.out[&key].attempt });
                    self.redispatch(
                        key,
                        &format!("ran longer than its timeout of {timeout:?}"),
                        now,
                        &mut fx,
                    );
                }
                Overdue::Silent => {
                    let why = format!("no result or heartbeat within {:?}", self.policy.silence);
                    if self.redispatch(key, &why, now, &mut fx) {
                        self.stats.redispatches += 1;
                    }
                }
            }
            if ended(&fx[from..]) {
                break;
            }
        }
        self.settle(fx)
    }

    /// Stop the job.
    pub fn cancel(&mut self, reason: &str) -> Vec<Effect> {
        if self.over {
            return Vec::new();
        }
        self.settle(vec![Effect::Fail(Failure::Cancelled(reason.to_owned()))])
    }

    /// Mark the ledger over once a terminal effect is out.
    fn settle(&mut self, fx: Vec<Effect>) -> Vec<Effect> {
        self.over |= ended(&fx);
        fx
    }

    fn on_result(&mut self, r: TaskResult, now: Instant, fx: &mut Vec<Effect>) {
        let ran = Duration::from_micros(r.exec_micros);
        let began = now.checked_sub(ran).unwrap_or(now);
        // The id names the range; a malformed one names nothing this job made.
        let Some(key) = key_of(&r.task) else { return };
        let Some(a) = self.out.get_mut(&key) else {
            // Late news of a finished task: a duplicate success counts, heartbeats do not.
            if matches!(r.outcome, Outcome::Done(_)) && self.finished(key) {
                self.stats.duplicates += 1;
                self.span(key, r.attempt, &r.ran_on, began, now, SpanEnd::Duplicate);
            }
            return;
        };
        let current = r.attempt == a.attempt && a.parked_on.is_none();
        let first_word = current && a.running_since.is_none();
        if first_word && matches!(r.outcome, Outcome::Running | Outcome::Done(_)) {
            self.waits.push((kind_of(key), began.saturating_duration_since(a.sent)));
        }
        let ended = match &r.outcome {
            Outcome::Done(_) => Some(SpanEnd::Done),
            Outcome::Failed { .. } | Outcome::CorruptInput { .. } if current => Some(SpanEnd::Failed),
            _ => None,
        };
        if let Some(outcome) = ended {
            self.span(key, r.attempt, &r.ran_on, began, now, outcome);
        }
        let a = self.out.get_mut(&key).expect("looked up above");
        match r.outcome {
            Outcome::Running if current => {
                a.last_heard = now;
                a.running_since = Some(began);
                if a.lane.as_deref() != Some(r.ran_on.as_str()) {
                    a.lane = Some(r.ran_on);
                }
            }
            Outcome::Failed { message, retryable } if current => {
                tracing::warn!(job = %self.who.job, task = %r.task, attempt = r.attempt, ran_on = %r.ran_on,
                    error = %message, "task failed");
                if retryable {
                    if self.redispatch(key, &message, now, fx) {
                        self.stats.retries += 1;
                    }
                } else {
                    let attempts = r.attempt;
                    fx.push(Effect::Fail(Failure::TaskFailed { task: r.task, attempts, message }));
                }
            }
            Outcome::CorruptInput { uri, message } if current => self.repair(key, &uri, &message, now, fx),
            Outcome::Done(artifact) => self.on_done(key, artifact, now, fx),
            // Stale: an older attempt's heartbeat or failure, or one of a parked task.
            _ => {}
        }
    }

    fn on_done(&mut self, key: Key, artifact: ArtifactRef, now: Instant, fx: &mut Vec<Effect>) {
        let a = self.out.remove(&key).expect("caller checked");
        self.out_cost -= a.cost;
        if kind_of(key) == TaskKind::Segment {
            self.segment_back(key.0);
        }
        let depth = depth_of(key);
        let record = |artifact: ArtifactRef| Record {
            task: id_of(key),
            start: key.0,
            end: key.1,
            depth,
            artifact,
            // A segment's input is in the manifest; an aggregation names its children.
            children: match a.split {
                0 => Vec::new(),
                split => vec![id_of((key.0, split)), id_of((split, key.1))],
            },
            attempt: a.attempt,
        };
        match a.purpose {
            Purpose::Fold => {
                if kind_of(key) == TaskKind::Segment {
                    self.progress.segments_done += 1;
                    self.progress.cost_done += a.cost;
                } else {
                    self.progress.aggregations_done += 1;
                }
                self.progress.depth = self.progress.depth.max(depth);
                fx.push(Effect::Journal(record(artifact.clone())));
                if a.split != 0 {
                    // Folded into this range: the children's records live in the journal.
                    self.done.remove(&(key.0, a.split));
                    self.done.remove(&(a.split, key.1));
                }
                let done = Done { artifact: artifact.clone(), attempt: a.attempt, split: a.split };
                self.done.insert(key, done);
                let finished = Finished { start: key.0, end: key.1, depth, value: artifact };
                self.fold_in(finished, fx);
            }
            Purpose::Repair { ref waiting } => {
                // Gone from `done` if its consumer finished meanwhile (another attempt
                // of it read a good copy) and folded it away.
                let stale = self.done.get_mut(&key).map(|old| {
                    old.attempt = a.attempt;
                    std::mem::replace(&mut old.artifact, artifact.clone())
                });
                if stale.as_ref() != Some(&artifact) {
                    // A plugin that is not byte-deterministic: consumers get the new
                    // reference (their tasks are made from `done`), wrap reads it from
                    // the journal.
                    fx.push(Effect::Journal(record(artifact.clone())));
                }
                for &consumer in waiting {
                    let Some(c) = self.out.get_mut(&consumer) else { continue };
                    c.parked_on = None;
                    c.last_heard = now;
                    self.redispatch(consumer, "its input was recomputed", now, fx);
                }
                if self.rewrap_after == Some(key) {
                    self.rewrap_after = None;
                    let root = self.root.as_mut().expect("set when wrap was first asked for");
                    if stale.is_some_and(|stale| root.uri == stale.uri) {
                        *root = artifact;
                    }
                    fx.push(Effect::Wrap(root.clone()));
                }
            }
        }
    }

    /// Whether the task over `key` finished: held, or inside a range that finished or
    /// is being aggregated (only finished tasks are folded). For late duplicates only.
    fn finished(&self, key: Key) -> bool {
        let inside = |range: Key| range.0 <= key.0 && key.1 <= range.1 && range != key;
        self.done.contains_key(&key)
            || self.done.keys().any(|&k| inside(k))
            || self.out.keys().any(|&k| kind_of(k) == TaskKind::Aggregate && inside(k))
            || self.ready.iter().any(|&(k, _)| inside(k))
    }

    /// Feed a finished range into the fold; ready the aggregation or wrap the root.
    fn fold_in(&mut self, done: Finished<ArtifactRef>, fx: &mut Vec<Effect>) {
        match self.fold.finish(done.start, done.end, done.depth, done.value) {
            FoldStep::Wait => {}
            FoldStep::Root(root) => {
                self.root = Some(root.value.clone());
                fx.push(Effect::Wrap(root.value));
            }
            // The children's artifacts are in `done`: the task is made when it goes out.
            FoldStep::Aggregate(left, right) => self.ready_aggregation((left.start, right.end), left.end),
        }
    }
}

fn ended(fx: &[Effect]) -> bool {
    fx.iter().any(|e| matches!(e, Effect::Wrap(_) | Effect::Fail(_)))
}

/// The kind of the task `id` over `start..end`, if the id names that range.
fn task_kind(id: &str, start: u32, end: u32) -> Option<TaskKind> {
    if end == start + 1 && id == segment_task_id(start) {
        Some(TaskKind::Segment)
    } else if end > start + 1 && id == aggregate_task_id(start, end) {
        Some(TaskKind::Aggregate)
    } else {
        None
    }
}

/// Height of the fold tree under a task: 0 for segments, about log2 of the segments
/// an aggregation covers (close enough for progress).
fn depth_of(key: Key) -> u32 {
    (key.1 - key.0).next_power_of_two().trailing_zeros()
}

/// Whether the task over `key` proves a segment or folds two ranges.
fn kind_of(key: Key) -> TaskKind {
    if key.1 == key.0 + 1 { TaskKind::Segment } else { TaskKind::Aggregate }
}

mod keys;
mod out;
mod pages;
mod repair;
mod start;

pub(super) use keys::{KeyMap, id_of, key_of};

#[cfg(test)]
mod tests;
