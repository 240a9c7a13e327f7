//! The per-job leader actor: publish segments, fold results as they stream in,
//! retry and re-dispatch, then wrap the root proof.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{oneshot, watch};

use super::journal::{Journal, Manifest, Record, maximal_ranges};
use super::{JobError, JobOutput, JobStats, LeaderConfig, Progress};
use crate::fold::{Finished, Fold, FoldStep};
use crate::plugin::{ExecCx, JobMeta, LeafSource, Plan, PluginError, ProofSystem};
use crate::store::ArtifactStore;
use crate::task::{ArtifactRef, Outcome, Task, TaskKind, TaskResult, aggregate_task_id, segment_task_id};
use crate::transport::Transport;

/// How often the leader looks for tasks past their deadline.
const TICK: Duration = Duration::from_millis(100);

pub enum JobMsg {
    /// Store the segment payloads and publish the segment tasks.
    Start,
    /// Results are waiting in the job's inbox.
    ResultsReady,
    Tick,
    Cancel(String),
}

/// How a job begins: from a fresh plan, or from what an earlier leader recorded.
pub enum JobStart {
    New(Plan),
    Resume { journal: Journal, manifest: Manifest, records: Vec<Record>, meta: Vec<u8> },
}

impl JobStart {
    fn segment_costs(&self) -> Vec<u64> {
        match self {
            Self::New(plan) => plan.segments.iter().map(|s| s.cost).collect(),
            Self::Resume { manifest, .. } => manifest.segments.iter().map(|s| s.cost).collect(),
        }
    }
}

pub struct JobArgs {
    pub job: String,
    pub plugin: Arc<dyn ProofSystem>,
    pub start: JobStart,
    pub config: LeaderConfig,
    pub reply_to: String,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn ArtifactStore>,
    pub progress: watch::Sender<Progress>,
    pub done: oneshot::Sender<Result<JobOutput, JobError>>,
    pub inbox: Arc<super::Inbox>,
}

pub struct JobActor;

struct InFlight {
    task: Task,
    sent: Instant,
}

pub struct JobState {
    args: JobArgsRest,
    started: Instant,
    in_flight: HashMap<String, InFlight>,
    finished: HashSet<String>,
    fold: Fold<ArtifactRef>,
    leaves: Vec<Option<ArtifactRef>>,
    progress: Progress,
    stats: JobStats,
    done: Option<oneshot::Sender<Result<JobOutput, JobError>>>,
    /// How the job begins, until it has.
    pending: Option<JobStart>,
    /// Where finished tasks are recorded, for `--resume`.
    journal: Option<Journal>,
    /// Records of the message being handled, appended to the journal in one entry.
    journal_batch: Vec<Record>,
    /// Tasks to publish once the current message is handled.
    outbox: Vec<Task>,
    /// Results routed to this job, taken in one batch per `ResultsReady`.
    inbox: Arc<super::Inbox>,
    /// The plan's opaque statement, for wrap.
    meta: Vec<u8>,
    /// Which task produced each artifact, to recompute a corrupted one.
    producers: HashMap<String, Task>,
    /// Producer being recomputed -> tasks waiting to be retried once it is back.
    repairs: HashMap<String, Vec<String>>,
}

struct JobArgsRest {
    job: String,
    plugin: Arc<dyn ProofSystem>,
    plugin_id: String,
    config: LeaderConfig,
    reply_to: String,
    transport: Arc<dyn Transport>,
    store: Arc<dyn ArtifactStore>,
    progress: watch::Sender<Progress>,
}

impl JobState {
    fn new_task(
        &self,
        id: String,
        kind: TaskKind,
        inputs: Vec<ArtifactRef>,
        range: (u32, u32),
        cost: u64,
    ) -> Task {
        Task {
            job: self.args.job.clone(),
            id,
            kind,
            plugin: self.args.plugin_id.clone(),
            inputs,
            start: range.0,
            end: range.1,
            attempt: 1,
            max_attempts: self.args.config.max_attempts,
            deadline_ms: self.args.config.task_deadline.as_millis() as u64,
            cost,
            reply_to: self.args.reply_to.clone(),
        }
    }

    /// Queue a task for the next [`flush`](Self::flush); it counts as in flight from now.
    fn dispatch(&mut self, task: Task) {
        self.in_flight.insert(task.id.clone(), InFlight { task: task.clone(), sent: Instant::now() });
        self.outbox.push(task);
    }

    /// Publish everything queued while handling one message, in one batch.
    async fn flush(&mut self) -> Result<(), JobError> {
        if self.outbox.is_empty() {
            return Ok(());
        }
        let tasks = std::mem::take(&mut self.outbox);
        self.args.transport.publish(tasks).await.map_err(|e| JobError::Transport(e.to_string()))
    }

    /// Send `id` again with the next attempt number, or fail the job if attempts are spent.
    fn redispatch(&mut self, id: &str, why: &str) -> Result<(), JobError> {
        let Some(flight) = self.in_flight.get(id) else {
            return Ok(());
        };
        let attempts = flight.task.attempt;
        if attempts >= self.args.config.max_attempts {
            return Err(JobError::TaskFailed { task: id.to_owned(), attempts, message: why.to_owned() });
        }
        let mut task = flight.task.clone();
        task.attempt += 1;
        tracing::warn!(job = %self.args.job, task = id, attempt = task.attempt, reason = why, "re-dispatching");
        self.dispatch(task);
        Ok(())
    }

    fn on_result(&mut self, result: TaskResult) -> Result<Option<Finished<ArtifactRef>>, JobError> {
        if self.finished.contains(&result.task) {
            // A recomputed (repaired) artifact is back: retry the tasks that needed it.
            if let Some(waiting) = self.repairs.remove(&result.task) {
                for consumer in waiting {
                    self.redispatch(&consumer, "input recomputed")?;
                }
            } else {
                self.stats.duplicates += 1;
            }
            return Ok(None);
        }
        let Some(flight) = self.in_flight.get(&result.task) else {
            tracing::debug!(task = %result.task, "result for an unknown task dropped");
            return Ok(None);
        };
        match result.outcome {
            Outcome::Running => {
                // Alive: the silence deadline starts again from now.
                if result.attempt == flight.task.attempt {
                    self.in_flight.get_mut(&result.task).expect("checked above").sent = Instant::now();
                }
                Ok(None)
            }
            Outcome::Failed { message, retryable } => {
                // A newer attempt is already out: let it finish.
                if result.attempt < flight.task.attempt {
                    return Ok(None);
                }
                tracing::warn!(job = %self.args.job, task = %result.task, attempt = result.attempt,
                    ran_on = %result.ran_on, error = %message, "task failed");
                if !retryable {
                    return Err(JobError::TaskFailed {
                        task: result.task,
                        attempts: result.attempt,
                        message,
                    });
                }
                self.stats.retries += 1;
                self.redispatch(&result.task, &message)?;
                Ok(None)
            }
            Outcome::CorruptInput { uri, message } => {
                if result.attempt < flight.task.attempt {
                    return Ok(None);
                }
                self.repair(&result.task, &uri, &message)?;
                Ok(None)
            }
            Outcome::Done(artifact) => {
                let flight = self.in_flight.remove(&result.task).expect("checked above");
                self.finished.insert(result.task.clone());
                self.producers.insert(artifact.uri.clone(), flight.task.clone());
                let depth = match flight.task.kind {
                    TaskKind::Segment => {
                        self.leaves[result.start as usize] = Some(artifact.clone());
                        self.progress.segments_done += 1;
                        self.progress.cost_done += flight.task.cost;
                        0
                    }
                    TaskKind::Aggregate => {
                        self.progress.aggregations_done += 1;
                        self.depth_of(&flight.task)
                    }
                };
                self.progress.depth = self.progress.depth.max(depth);
                self.journal_batch.push(Record {
                    task: result.task.clone(),
                    start: result.start,
                    end: result.end,
                    depth,
                    artifact: artifact.clone(),
                });
                Ok(Some(Finished { start: result.start, end: result.end, depth, value: artifact }))
            }
        }
    }

    fn depth_of(&self, task: &Task) -> u32 {
        // Aggregate depth = 1 + log2 of the segments covered, rounded up: close enough for progress.
        (task.end - task.start).next_power_of_two().trailing_zeros()
    }

    /// Feed a finished range into the fold and dispatch what becomes ready.
    fn fold(&mut self, done: Finished<ArtifactRef>) -> Option<ArtifactRef> {
        match self.fold.finish(done.start, done.end, done.depth, done.value) {
            FoldStep::Wait => None,
            FoldStep::Root(root) => Some(root.value),
            FoldStep::Aggregate(left, right) => {
                let id = aggregate_task_id(left.start, right.end);
                let range = (left.start, right.end);
                let task = self.new_task(id, TaskKind::Aggregate, vec![left.value, right.value], range, 1);
                self.dispatch(task);
                None
            }
        }
    }

    /// `consumer` found its input `uri` corrupted: recompute it by running its producer
    /// again (tasks are deterministic, so the new bytes match the old reference), then
    /// retry `consumer`. Plan payloads have no producer: that is fatal.
    fn repair(&mut self, consumer: &str, uri: &str, message: &str) -> Result<(), JobError> {
        let Some(producer) = self.producers.get(uri).cloned() else {
            return Err(JobError::TaskFailed {
                task: consumer.to_owned(),
                attempts: self.in_flight.get(consumer).map_or(1, |f| f.task.attempt),
                message: format!("{message}; it is not the output of a task, so it cannot be recomputed"),
            });
        };
        tracing::warn!(job = %self.args.job, task = consumer, artifact = uri, producer = %producer.id,
            "{message}; recomputing it");
        self.stats.repairs += 1;
        if let Some(flight) = self.in_flight.get_mut(consumer) {
            flight.sent = Instant::now();
        }
        let waiting = self.repairs.entry(producer.id.clone()).or_default();
        let first = waiting.is_empty();
        waiting.push(consumer.to_owned());
        if first {
            let mut task = producer;
            task.attempt += 1;
            self.outbox.push(task);
        }
        Ok(())
    }

    /// Take in a batch of results; returns the root once the fold is complete.
    fn on_results(&mut self, results: Vec<TaskResult>) -> Result<Option<ArtifactRef>, JobError> {
        let mut root = None;
        for result in results {
            if let Some(done) = self.on_result(result)? {
                root = root.or(self.fold(done));
            }
        }
        Ok(root)
    }

    async fn wrap(&mut self, root: ArtifactRef) -> Result<Vec<u8>, JobError> {
        let started = Instant::now();
        let store = self.args.store.clone();
        let plugin = self.args.plugin.clone();
        let job = self.args.job.clone();
        let meta = self.meta.clone();
        let leaves =
            StoreLeaves { store: store.clone(), refs: self.leaves.iter().flatten().cloned().collect() };
        let proof = tokio::task::spawn_blocking(move || {
            let root = store.get(&root).map_err(|e| PluginError::permanent(e.to_string()))?;
            let mut cx = ExecCx::new("wrap", 0, Default::default());
            plugin.wrap(&mut cx, &root, &JobMeta { job: &job, meta: &meta, leaves: &leaves })
        })
        .await
        .map_err(|e| JobError::Wrap(format!("wrap panicked: {e}")))?
        .map_err(|e| JobError::Wrap(e.to_string()))?;
        self.stats.wrap = started.elapsed();
        Ok(proof)
    }

    /// Publish what the job needs first: every segment of a new plan (after storing the
    /// plan and manifest), or, when resuming, only what the journal does not show done.
    /// Returns the root if a resumed job had already folded everything.
    fn start(&mut self) -> Result<Option<ArtifactRef>, JobError> {
        let store_err = |e: crate::store::StoreError| JobError::Store(e.to_string());
        let (manifest, records) = match self.pending.take() {
            None => return Ok(None),
            Some(JobStart::New(plan)) => {
                self.meta = plan.meta.clone();
                let (journal, manifest) =
                    Journal::create(self.args.store.clone(), &self.args.job, &self.args.plugin_id, plan)
                        .map_err(store_err)?;
                self.journal = Some(journal);
                (manifest, Vec::new())
            }
            Some(JobStart::Resume { journal, manifest, records, meta }) => {
                self.meta = meta;
                self.journal = Some(journal);
                (manifest, records)
            }
        };
        for r in &records {
            self.finished.insert(r.task.clone());
            if r.end == r.start + 1 && r.task.starts_with("seg-") {
                self.leaves[r.start as usize] = Some(r.artifact.clone());
                self.progress.segments_done += 1;
                self.progress.cost_done += manifest.segments[r.start as usize].cost;
            } else {
                self.progress.aggregations_done += 1;
            }
        }
        self.stats.resumed_segments = self.progress.segments_done;
        let mut covered = vec![false; manifest.segments.len()];
        let mut root = None;
        for r in maximal_ranges(&records) {
            covered[r.start as usize..r.end as usize].iter_mut().for_each(|c| *c = true);
            let done = Finished { start: r.start, end: r.end, depth: r.depth, value: r.artifact };
            root = root.or(self.fold(done));
        }
        for (i, segment) in manifest.segments.into_iter().enumerate() {
            if covered[i] {
                continue;
            }
            let range = (i as u32, i as u32 + 1);
            let task = self.new_task(
                segment_task_id(i as u32),
                TaskKind::Segment,
                vec![segment.payload],
                range,
                segment.cost,
            );
            self.dispatch(task);
        }
        Ok(root)
    }

    /// Record what finished while handling this message (one journal entry).
    fn write_journal(&mut self) -> Result<(), JobError> {
        let batch = std::mem::take(&mut self.journal_batch);
        match &mut self.journal {
            Some(journal) => tokio::task::block_in_place(|| journal.append(&batch))
                .map_err(|e| JobError::Store(format!("writing the job journal: {e}"))),
            None => Ok(()),
        }
    }

    fn finish(&mut self, outcome: Result<JobOutput, JobError>) {
        if let Some(done) = self.done.take() {
            let _ = done.send(outcome);
        }
    }
}

struct StoreLeaves {
    store: Arc<dyn ArtifactStore>,
    refs: Vec<ArtifactRef>,
}

impl LeafSource for StoreLeaves {
    fn leaf_count(&self) -> u32 {
        self.refs.len() as u32
    }
    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        let r = self
            .refs
            .get(index as usize)
            .ok_or_else(|| PluginError::permanent(format!("no leaf {index}")))?;
        self.store.get(r).map_err(|e| PluginError::permanent(e.to_string()))
    }
}

impl Actor for JobActor {
    type Msg = JobMsg;
    type State = JobState;
    type Arguments = JobArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<JobMsg>,
        args: JobArgs,
    ) -> Result<JobState, ActorProcessingErr> {
        let costs = args.start.segment_costs();
        let n = costs.len() as u32;
        let progress = Progress {
            segments_total: n,
            aggregations_total: n.saturating_sub(1),
            cost_total: costs.iter().sum(),
            ..Progress::default()
        };
        let state = JobState {
            args: JobArgsRest {
                job: args.job,
                plugin_id: args.plugin.id().to_string(),
                plugin: args.plugin,
                config: args.config,
                reply_to: args.reply_to,
                transport: args.transport,
                store: args.store,
                progress: args.progress,
            },
            started: Instant::now(),
            in_flight: HashMap::new(),
            finished: HashSet::new(),
            fold: Fold::new(n),
            leaves: vec![None; n as usize],
            progress,
            stats: JobStats { segments: n, ..JobStats::default() },
            done: Some(args.done),
            pending: Some(args.start),
            journal: None,
            journal_batch: Vec::new(),
            meta: Vec::new(),
            outbox: Vec::new(),
            producers: HashMap::new(),
            repairs: HashMap::new(),
            inbox: args.inbox,
        };
        myself.send_interval(TICK, || JobMsg::Tick);
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<JobMsg>,
        msg: JobMsg,
        state: &mut JobState,
    ) -> Result<(), ActorProcessingErr> {
        let step = match msg {
            JobMsg::Start => state.start(),
            JobMsg::ResultsReady => {
                let results = state.inbox.take();
                state.on_results(results)
            }
            JobMsg::Tick => {
                let deadline = state.args.config.task_deadline;
                let overdue: Vec<String> = state
                    .in_flight
                    .iter()
                    .filter(|(_, f)| f.sent.elapsed() > deadline)
                    .map(|(id, _)| id.clone())
                    .collect();
                let mut step = Ok(None);
                for id in overdue {
                    state.stats.redispatches += 1;
                    if let Err(e) = state.redispatch(&id, &format!("no result within {deadline:?}")) {
                        step = Err(e);
                        break;
                    }
                }
                step
            }
            JobMsg::Cancel(reason) => Err(JobError::Cancelled(reason)),
        };
        let step = match state.write_journal() {
            Ok(()) => step,
            Err(e) => Err(e),
        };
        let step = match state.flush().await {
            Ok(()) => step,
            Err(e) => Err(e),
        };
        state.progress.elapsed = state.started.elapsed();
        let _ = state.args.progress.send(state.progress.clone());
        let outcome = match step {
            Ok(None) => return Ok(()),
            Ok(Some(root)) => state.wrap(root).await.map(|proof| {
                let mut stats = state.stats.clone();
                stats.aggregations = state.progress.aggregations_done;
                stats.depth = state.progress.depth;
                stats.elapsed = state.started.elapsed();
                JobOutput { job: state.args.job.clone(), plugin: state.args.plugin.id(), proof, stats }
            }),
            Err(e) => Err(e),
        };
        // Whatever happened, the job is over: drop its queued tasks. A proven job's
        // artifacts go too; a failed one keeps them for `--resume` (and `gc`).
        let _ = state.args.transport.cancel_job(&state.args.job).await;
        if outcome.is_ok()
            && !state.args.config.keep_artifacts
            && let Err(e) = state.args.store.delete_prefix(&state.args.job)
        {
            tracing::warn!(job = %state.args.job, error = %e, "could not delete the job's artifacts");
        }
        state.finish(outcome);
        myself.stop(None);
        Ok(())
    }
}
