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
//!    shared among jobs. Repairs and re-dispatches go out at once.
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
//! 7. **Wrap's inputs.** If wrap cannot read the root or a leaf (corrupt or missing),
//!    [`JobLedger::on_wrap_input_unusable`] repairs it like a task's input and emits
//!    `Wrap` again once the repair succeeded (at most `max_attempts` times).
//!
//! Once the ledger emits [`Effect::Fail`] or [`Effect::Wrap`] it is over and ignores
//! further events (until wrap reports an unusable input).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::journal::{Record, SegmentRef, maximal_ranges};
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
    Repair { waiting: Vec<String> },
}

/// One task out with the workers.
#[derive(Debug)]
struct Attempt {
    task: Task,
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
    parked_on: Option<String>,
}

/// A task that finished, and what it made.
#[derive(Debug)]
struct Done {
    task: Task,
    artifact: ArtifactRef,
}

/// The state of one job.
pub struct JobLedger {
    who: Identity,
    policy: Policy,
    segments: Vec<SegmentRef>,
    fold: Fold<ArtifactRef>,
    leaves: Vec<Option<ArtifactRef>>,
    out: HashMap<String, Attempt>,
    /// Created, waiting for [`JobLedger::release`]: aggregations first.
    ready: VecDeque<Task>,
    /// Summed cost of `ready` and of `out`.
    ready_cost: u64,
    out_cost: u64,
    /// Queue waits (publish to start) seen since [`JobLedger::take_waits`].
    waits: Vec<(TaskKind, Duration)>,
    done: HashMap<String, Done>,
    /// Artifact uri -> the finished task that wrote it.
    producers: HashMap<String, String>,
    progress: Progress,
    stats: JobStats,
    over: bool,
    /// The root last handed to wrap, and how often wrap's inputs had to be repaired.
    root: Option<ArtifactRef>,
    wrap_repairs: u32,
    /// Wrap runs again once this task's repair succeeded.
    rewrap_after: Option<String>,
    /// When [`JobLedger::start`] ran: spans are timed from here.
    began: Option<Instant>,
    /// Every ended attempt, when a timeline is recorded.
    spans: Option<Vec<Span>>,
}

impl JobLedger {
    pub fn new(who: Identity, policy: Policy, segments: Vec<SegmentRef>) -> Self {
        let n = segments.len() as u32;
        let progress = Progress {
            segments_total: n,
            aggregations_total: n.saturating_sub(1),
            cost_total: segments.iter().map(|s| s.cost).sum(),
            ..Progress::default()
        };
        Self {
            who,
            policy,
            fold: Fold::new(n),
            leaves: vec![None; n as usize],
            segments,
            out: HashMap::new(),
            ready: VecDeque::new(),
            ready_cost: 0,
            out_cost: 0,
            waits: Vec::new(),
            done: HashMap::new(),
            producers: HashMap::new(),
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
        self.ready.len()
    }

    /// Work not yet done: `(ready tasks, tasks out, ready cost, cost out)`, in the
    /// plugin's cost unit.
    pub fn outstanding(&self) -> (usize, usize, u64, u64) {
        (self.ready.len(), self.out.len(), self.ready_cost, self.out_cost)
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
        for _ in 0..n.min(self.ready.len()) {
            let task = self.ready.pop_front().expect("counted above");
            self.ready_cost -= task.cost;
            self.send(task, Purpose::Fold, now, &mut fx);
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

    /// The artifacts of segments `0..n` in order, once all are finished.
    pub fn leaves(&self) -> Vec<ArtifactRef> {
        self.leaves.iter().flatten().cloned().collect()
    }

    /// Tasks out with workers now (parked ones included; ready ones not).
    pub fn in_flight(&self) -> usize {
        self.out.len()
    }

    pub fn is_over(&self) -> bool {
        self.over
    }

    /// Begin: `records` are what an earlier leader of this job finished (empty for a
    /// new job). Dispatches every segment no finished range covers.
    pub fn start(&mut self, records: Vec<Record>, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.began = Some(now);
        // A task journalled twice (its artifact was repaired) counts once, as last written.
        let mut latest: HashMap<String, Record> = HashMap::new();
        for r in records {
            let valid = (r.start < r.end) && (r.end as usize) <= self.segments.len();
            if valid && task_kind(&r.task, r.start, r.end).is_some() {
                latest.insert(r.task.clone(), r);
            } else {
                tracing::warn!(job = %self.who.job, task = %r.task, "journal record out of the plan's range ignored");
            }
        }
        let records: Vec<Record> = latest.values().cloned().collect();
        for r in &records {
            let kind = task_kind(&r.task, r.start, r.end).expect("checked above");
            // An aggregation's inputs are its children's artifacts, as last journalled;
            // empty when the journal does not say (it then cannot be recomputed).
            let inputs = match kind {
                TaskKind::Segment => vec![self.segments[r.start as usize].payload.clone()],
                TaskKind::Aggregate => {
                    let children: Option<Vec<_>> = r
                        .children
                        .iter()
                        .map(|c| latest.get(c).map(|child| child.artifact.clone()))
                        .collect();
                    children.filter(|c| c.len() == 2).unwrap_or_default()
                }
            };
            let mut task = self.new_task(r.task.clone(), kind, inputs, (r.start, r.end));
            // A resumed task's attempts restart at 1; the journal does not keep them.
            task.attempt = 1;
            match kind {
                TaskKind::Segment => {
                    self.leaves[r.start as usize] = Some(r.artifact.clone());
                    self.progress.segments_done += 1;
                    self.progress.cost_done += task.cost;
                }
                TaskKind::Aggregate => self.progress.aggregations_done += 1,
            }
            self.producers.insert(r.artifact.uri.clone(), r.task.clone());
            self.done.insert(r.task.clone(), Done { task, artifact: r.artifact.clone() });
        }
        self.stats.resumed_segments = self.progress.segments_done;
        let mut covered = vec![false; self.segments.len()];
        for r in maximal_ranges(&records) {
            covered[r.start as usize..r.end as usize].iter_mut().for_each(|c| *c = true);
            self.progress.depth = self.progress.depth.max(r.depth);
            self.fold_in(
                Finished { start: r.start, end: r.end, depth: r.depth, value: r.artifact },
                now,
                &mut fx,
            );
        }
        for (i, seg) in self.segments.clone().into_iter().enumerate() {
            if !covered[i] {
                let i = i as u32;
                let task =
                    self.new_task(segment_task_id(i), TaskKind::Segment, vec![seg.payload], (i, i + 1));
                self.dispatch(task, Purpose::Fold, now, &mut fx);
            }
        }
        self.settle(fx)
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
        let mut overdue: Vec<(String, Overdue)> = Vec::new();
        for (id, a) in &self.out {
            if a.parked_on.is_some() {
                continue;
            }
            let timeout = (self.policy.timeout_of)(a.task.kind, a.task.cost);
            if a.running_since.is_some_and(|since| now.saturating_duration_since(since) > timeout) {
                overdue.push((id.clone(), Overdue::RanTooLong(timeout)));
            } else if now.saturating_duration_since(a.last_heard) > self.policy.silence {
                overdue.push((id.clone(), Overdue::Silent));
            }
        }
        overdue.sort();
        for (id, why) in overdue {
            let from = fx.len();
            // Spans cost a task clone each: only when a timeline is recorded.
            if self.spans.is_some()
                && let Some(a) = self.out.get(&id)
                && let Some(since) = a.running_since
            {
                let outcome = match why {
                    Overdue::RanTooLong(_) => SpanEnd::TimedOut,
                    Overdue::Silent => SpanEnd::Lost,
                };
                let (task, lane) = (a.task.clone(), a.lane.clone().unwrap_or_else(|| "unknown".into()));
                self.span(&task, &lane, since, now, outcome);
            }
            match why {
                Overdue::RanTooLong(timeout) => {
                    self.stats.timeouts += 1;
                    fx.push(Effect::Abandon { task: id.clone(), attempt: self.out[&id].task.attempt });
                    self.redispatch(
                        &id,
                        &format!("ran longer than its timeout of {timeout:?}"),
                        now,
                        &mut fx,
                    );
                }
                Overdue::Silent => {
                    let why = format!("no result or heartbeat within {:?}", self.policy.silence);
                    if self.redispatch(&id, &why, now, &mut fx) {
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
        let Some(a) = self.out.get_mut(&r.task) else {
            // Late news of a finished task: a duplicate success counts, heartbeats do not.
            if let Some(done) = self.done.get(&r.task)
                && matches!(r.outcome, Outcome::Done(_))
            {
                self.stats.duplicates += 1;
                if self.spans.is_none() {
                    return;
                }
                let mut task = done.task.clone();
                task.attempt = r.attempt;
                self.span(&task, &r.ran_on, began, now, SpanEnd::Duplicate);
            }
            return;
        };
        let current = r.attempt == a.task.attempt && a.parked_on.is_none();
        let ended = match &r.outcome {
            Outcome::Done(_) => Some(SpanEnd::Done),
            Outcome::Failed { .. } | Outcome::CorruptInput { .. } if current => Some(SpanEnd::Failed),
            _ => None,
        };
        if let Some(outcome) = ended.filter(|_| self.spans.is_some()) {
            let mut task = a.task.clone();
            task.attempt = r.attempt;
            self.span(&task, &r.ran_on, began, now, outcome);
        }
        let a = self.out.get_mut(&r.task).expect("looked up above");
        let first_word = current && a.running_since.is_none();
        if first_word && matches!(r.outcome, Outcome::Running | Outcome::Done(_)) {
            self.waits.push((a.task.kind, began.saturating_duration_since(a.sent)));
        }
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
                    if self.redispatch(&r.task, &message, now, fx) {
                        self.stats.retries += 1;
                    }
                } else {
                    let attempts = r.attempt;
                    fx.push(Effect::Fail(Failure::TaskFailed { task: r.task, attempts, message }));
                }
            }
            Outcome::CorruptInput { uri, message } if current => {
                self.repair(&r.task, &uri, &message, now, fx)
            }
            Outcome::Done(artifact) => self.on_done(&r.task, artifact, now, fx),
            // Stale: an older attempt's heartbeat or failure, or one of a parked task.
            _ => {}
        }
    }

    fn on_done(&mut self, id: &str, artifact: ArtifactRef, now: Instant, fx: &mut Vec<Effect>) {
        let a = self.out.remove(id).expect("caller checked");
        self.out_cost -= a.task.cost;
        let record = Record {
            task: id.to_owned(),
            start: a.task.start,
            end: a.task.end,
            depth: depth_of(&a.task),
            artifact: artifact.clone(),
            // A segment's input is in the manifest; an aggregation names its children.
            children: match a.task.kind {
                TaskKind::Segment => Vec::new(),
                TaskKind::Aggregate => {
                    a.task.inputs.iter().filter_map(|i| self.producers.get(&i.uri).cloned()).collect()
                }
            },
        };
        match a.purpose {
            Purpose::Fold => {
                match a.task.kind {
                    TaskKind::Segment => {
                        self.leaves[a.task.start as usize] = Some(artifact.clone());
                        self.progress.segments_done += 1;
                        self.progress.cost_done += a.task.cost;
                    }
                    TaskKind::Aggregate => self.progress.aggregations_done += 1,
                }
                self.progress.depth = self.progress.depth.max(record.depth);
                self.producers.insert(artifact.uri.clone(), id.to_owned());
                fx.push(Effect::Journal(record.clone()));
                self.done.insert(id.to_owned(), Done { task: a.task, artifact: artifact.clone() });
                let finished =
                    Finished { start: record.start, end: record.end, depth: record.depth, value: artifact };
                self.fold_in(finished, now, fx);
            }
            Purpose::Repair { waiting } => {
                let old = self.done.get_mut(id).expect("a repaired task finished before");
                let stale = std::mem::replace(&mut old.artifact, artifact.clone());
                if stale != artifact {
                    // A plugin that is not byte-deterministic: consumers get the new reference.
                    fx.push(Effect::Journal(record));
                    if a.task.kind == TaskKind::Segment {
                        self.leaves[a.task.start as usize] = Some(artifact.clone());
                    }
                }
                for consumer in waiting {
                    let Some(c) = self.out.get_mut(&consumer) else { continue };
                    c.parked_on = None;
                    c.last_heard = now;
                    for input in &mut c.task.inputs {
                        if input.uri == stale.uri {
                            *input = artifact.clone();
                        }
                    }
                    self.redispatch(&consumer, "its input was recomputed", now, fx);
                }
                if self.rewrap_after.as_deref() == Some(id) {
                    self.rewrap_after = None;
                    let root = self.root.as_mut().expect("set when wrap was first asked for");
                    if root.uri == stale.uri {
                        *root = artifact;
                    }
                    fx.push(Effect::Wrap(root.clone()));
                }
            }
        }
    }

    /// Feed a finished range into the fold; dispatch the aggregation or wrap the root.
    fn fold_in(&mut self, done: Finished<ArtifactRef>, now: Instant, fx: &mut Vec<Effect>) {
        match self.fold.finish(done.start, done.end, done.depth, done.value) {
            FoldStep::Wait => {}
            FoldStep::Root(root) => {
                self.root = Some(root.value.clone());
                fx.push(Effect::Wrap(root.value));
            }
            FoldStep::Aggregate(left, right) => {
                let range = (left.start, right.end);
                let id = aggregate_task_id(range.0, range.1);
                let task = self.new_task(id, TaskKind::Aggregate, vec![left.value, right.value], range);
                self.dispatch(task, Purpose::Fold, now, fx);
            }
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
fn depth_of(task: &Task) -> u32 {
    match task.kind {
        TaskKind::Segment => 0,
        TaskKind::Aggregate => (task.end - task.start).next_power_of_two().trailing_zeros(),
    }
}

mod out;
mod repair;

#[cfg(test)]
mod tests;
