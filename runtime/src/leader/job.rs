//! The per-job actor: carries out what the [`JobLedger`] decides.
//!
//! The actor owns the I/O of one job (the store, the transport, the lease, the clock)
//! and none of its decisions. Each message becomes one ledger event; the effects that
//! come back are carried out in a fixed order:
//!
//! 1. **Journal** every finished task in one store write, so what is published next
//!    never depends on a result that a crash could forget. (Segments depend on no
//!    result: when the store is slow, they go out before the write.)
//! 2. **Publish** the new tasks in one batch (one confirm round trip): re-dispatches,
//!    and as many ready tasks as the leader's [`Dispatcher`] grants this job (the
//!    window shared among jobs). Jobs granted slots freed here are told to dispatch.
//! 3. **Abandon** attempts past their timeout (a broadcast that workers act on).
//! 4. **End** on `Wrap` or `Fail`: stop the run's remaining tasks everywhere
//!    (`CancelJob` for this run only), release the lease, and hand the outcome to the
//!    caller. Nothing is deleted here: a proven job's artifacts go only when the caller
//!    says its proof is durable ([`Leader::discard`](super::Leader::discard)).
//! 5. **Read back** what the ledger let go and asks for again: the records a repair
//!    needs (`Effect::Recall`, from the journal) and pages of a large plan's segments
//!    (`Effect::LoadSegments`, from the manifest's parts). The ledger takes them in, the
//!    tasks that can go out are released, and their effects are carried out from step 1.
//!
//! Store calls go through [`blocking`] (in place on a multi-threaded runtime); the
//! lease refresh, every third of its lifetime, runs on the blocking pool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{oneshot, watch};

use super::journal::{Journal, Manifest, Record};
use super::lease::Lease;
use super::ledger::{Effect, Identity, JobLedger, Policy};
use super::scheduler::Dispatcher;
use super::timeline::{Span, SpanEnd, SpanKind, Timeline};
use super::{JobError, JobOutput, JobStats, LeaderConfig, Progress, Routes};
use crate::metrics::leader as metrics;
use crate::metrics::{Kind, TaskOutcome};
use crate::plugin::{Plan, PluginError, ProofSystem};
use crate::store::{ArtifactStore, StoreError};
use crate::task::{ArtifactRef, Control, Task, TaskKind};
use crate::transport::Transport;

mod read_back;
mod wrap;

use read_back::Asked;

use wrap::{StoreLeaves, wrap_with};

/// How often the actor looks for attempts past their deadlines.
const TICK: Duration = Duration::from_millis(100);

pub enum JobMsg {
    /// Store the plan (or read the journal) and publish the first tasks.
    Start,
    /// Results are waiting in the job's inbox.
    ResultsReady,
    Tick,
    /// Slots in the shared window were granted to this job: publish ready tasks.
    Dispatch,
    Cancel(String),
    /// Results can no longer arrive (the broker was given up): fail with this.
    ResultsLost(crate::transport::TransportError),
}

/// How a job begins: from a fresh plan, or from what an earlier leader recorded.
// Made and taken apart once per job: boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum JobStart {
    New(Plan),
    Resume { journal: Journal, manifest: Manifest, records: Vec<Record>, meta: Vec<u8> },
}

pub struct JobArgs {
    pub job: String,
    pub run: u64,
    pub plugin: Arc<dyn ProofSystem>,
    pub start: JobStart,
    pub config: LeaderConfig,
    pub reply_to: String,
    pub transport: Arc<dyn Transport>,
    pub store: Arc<dyn ArtifactStore>,
    pub lease: Lease,
    pub progress: watch::Sender<Progress>,
    pub done: oneshot::Sender<super::Ended>,
    pub inbox: Arc<super::Inbox>,
    pub dispatcher: Arc<std::sync::Mutex<Dispatcher>>,
    pub routes: Routes,
    /// Record a timeline.
    pub timeline: bool,
}

pub struct JobActor;

pub struct JobState {
    job: String,
    run: u64,
    plugin: Arc<dyn ProofSystem>,
    config: LeaderConfig,
    reply_to: String,
    transport: Arc<dyn Transport>,
    store: Arc<dyn ArtifactStore>,
    progress: watch::Sender<Progress>,
    inbox: Arc<super::Inbox>,
    done: Option<oneshot::Sender<super::Ended>>,
    started: Instant,
    /// How the job begins, until it has.
    pending: Option<JobStart>,
    /// Present once the job has started.
    ledger: Option<JobLedger>,
    journal: Option<Journal>,
    /// Where the pages of a large plan's segments are read back from.
    segment_parts: Vec<ArtifactRef>,
    lease: Option<Arc<Lease>>,
    last_lease_refresh: Instant,
    /// The plan's opaque statement, for wrap.
    meta: Vec<u8>,
    dispatcher: Arc<std::sync::Mutex<Dispatcher>>,
    routes: Routes,
    /// Wrap's attempts, when a timeline is recorded.
    wrap_spans: Option<Vec<Span>>,
}

/// Run a store operation where it may block: in place on a multi-threaded runtime
/// (tokio moves this worker's other tasks away; no thread hand-off, which matters once
/// per result batch), on the blocking pool otherwise.
pub(super) async fn blocking<T: Send + 'static>(
    what: &str,
    op: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, JobError> {
    in_place(what, op).await?.map_err(|source| JobError::Store { what: what.to_owned(), source })
}

/// [`blocking`] for an operation with its own error type.
async fn in_place<T: Send + 'static>(
    what: &str,
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        Ok(tokio::task::block_in_place(op))
    } else {
        tokio::task::spawn_blocking(op)
            .await
            .map_err(|e| JobError::Internal(format!("{what}: the blocking task died: {e}")))
    }
}

impl JobState {
    fn policy(&self) -> Policy {
        let plugin = self.plugin.clone();
        let fixed = self.config.task_timeout;
        Policy {
            max_attempts: self.config.max_attempts.max(1),
            silence: self.config.task_deadline,
            timeout_of: Box::new(move |kind, cost| {
                fixed.unwrap_or_else(|| plugin.task_timeout(kind.into(), cost))
            }),
        }
    }

    fn identity(&self) -> Identity {
        Identity {
            job: self.job.clone(),
            run: self.run,
            plugin: self.plugin.id().to_string(),
            reply_to: self.reply_to.clone(),
        }
    }

    /// Store a new plan, or take over a journal; returns the ledger's first effects.
    async fn start(&mut self) -> Result<Vec<Effect>, JobError> {
        let (manifest, records) = match self.pending.take() {
            None => return Ok(Vec::new()),
            Some(JobStart::New(plan)) => {
                self.meta = plan.meta.clone();
                let (store, job, plugin) =
                    (self.store.clone(), self.job.clone(), self.plugin.id().to_string());
                let (journal, manifest) =
                    blocking("storing the plan", move || Journal::create(store, &job, &plugin, plan)).await?;
                self.journal = Some(journal);
                (manifest, Vec::new())
            }
            Some(JobStart::Resume { journal, manifest, records, meta }) => {
                self.meta = meta;
                self.journal = Some(journal);
                (manifest, records)
            }
        };
        self.segment_parts = manifest.segment_parts;
        let mut ledger = JobLedger::new(self.identity(), self.policy(), manifest.pages);
        if self.wrap_spans.is_some() {
            ledger = ledger.with_timeline();
        }
        let fx = ledger.start(records, Instant::now());
        self.ledger = Some(ledger);
        Ok(fx)
    }

    fn ledger(&mut self) -> &mut JobLedger {
        self.ledger.as_mut().expect("events arrive after Start")
    }

    /// Ask the dispatcher how many ready tasks may go out now; wake the jobs that got
    /// slots. Returns the released tasks' effects.
    fn dispatch_ready(&mut self, now: Instant) -> Vec<Effect> {
        let Some(ledger) = self.ledger.as_mut() else { return Vec::new() };
        if ledger.is_over() {
            return Vec::new();
        }
        let (update, window) = {
            let mut dispatcher = self.dispatcher.lock().expect("dispatcher lock");
            (dispatcher.update(&self.job, ledger.ready_len(), ledger.in_flight()), dispatcher.window())
        };
        metrics::set_dispatch_window(window);
        wake(&self.routes, &update.wake);
        ledger.release(update.grant, now)
    }

    /// Export what the last event changed: waits, retries, outstanding work.
    fn report(&mut self, before: &JobStats) {
        let Some(ledger) = self.ledger.as_mut() else { return };
        for (kind, wait) in ledger.take_waits() {
            metrics::task_started(kind.into(), wait);
        }
        let after = ledger.stats();
        (0..after.retries - before.retries).for_each(|_| metrics::task_retried());
        (0..after.redispatches - before.redispatches)
            .for_each(|_| metrics::task_redispatched(metrics::Redispatch::Silent));
        (0..after.timeouts - before.timeouts)
            .for_each(|_| metrics::task_redispatched(metrics::Redispatch::Timeout));
        (0..after.repairs - before.repairs).for_each(|_| metrics::task_repaired());
        let (ready, out, ready_cost, out_cost) = ledger.outstanding();
        metrics::set_job_outstanding(&self.job, ready as u64, out as u64, ready_cost, out_cost);
    }

    /// Note the lanes that reported, so the automatic window follows the pool.
    fn saw_lanes(&self, results: &[crate::task::TaskResult], now: Instant) {
        let mut dispatcher = self.dispatcher.lock().expect("dispatcher lock");
        let mut last: Option<&str> = None;
        for r in results {
            if last != Some(r.ran_on.as_str()) {
                dispatcher.saw_lane(&r.ran_on, now);
                last = Some(&r.ran_on);
            }
        }
    }

    /// Keep the lease alive; losing it to another leader ends this run.
    async fn refresh_lease(&mut self) -> Result<(), JobError> {
        let Some(lease) = self.lease.clone() else { return Ok(()) };
        if self.last_lease_refresh.elapsed() < lease.ttl() / 3 {
            return Ok(());
        }
        self.last_lease_refresh = Instant::now();
        match tokio::task::spawn_blocking(move || lease.refresh()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if e.is_lost() => Err(JobError::Lease(e)),
            Ok(Err(e)) => {
                tracing::warn!(job = %self.job, error = %e, "could not refresh the job's lease; trying again");
                Ok(())
            }
            Err(e) => Err(JobError::Internal(format!("refreshing the lease: {e}"))),
        }
    }

    /// Steps 1-3 of the module doc, and step 5 for as long as the ledger asks; returns
    /// the ending effect, if any.
    async fn carry_out(&mut self, fx: Vec<Effect>) -> Option<Result<ArtifactRef, JobError>> {
        let (mut end, mut asked) = self.carry_out_once(fx).await;
        while end.is_none() && !(asked.recall.is_empty() && asked.pages.is_empty()) {
            let fx = match self.read_back(std::mem::take(&mut asked)).await {
                Ok(fx) => fx,
                Err(e) => return Some(Err(e)),
            };
            (end, asked) = self.carry_out_once(fx).await;
        }
        end
    }

    /// Steps 1-3 of the module doc; returns the ending effect, if any, and what the
    /// ledger asked to read back.
    async fn carry_out_once(&mut self, fx: Vec<Effect>) -> (Option<Result<ArtifactRef, JobError>>, Asked) {
        let mut records = Vec::new();
        let mut asked = Asked::default();
        let mut tasks: Vec<Task> = Vec::new();
        let mut abandon = Vec::new();
        let mut end = None;
        for effect in fx {
            match effect {
                Effect::Journal(r) => records.push(r),
                Effect::Publish(t) => tasks.push(t),
                Effect::Abandon { task, attempt } => abandon.push((task, attempt)),
                Effect::Recall(ranges) => asked.recall.extend(ranges),
                Effect::LoadSegments(page) => asked.pages.push(page),
                Effect::Wrap(root) => end = Some(Ok(root)),
                Effect::Fail(f) => end = Some(Err(JobError::Failed(f))),
            }
        }
        // A journal write on disk or S3 takes milliseconds: segments (which depend on no
        // result) go out first, so the lanes stay busy meanwhile.
        if end.is_none() && !records.is_empty() && self.store.blocks() {
            let (segments, rest) = tasks.into_iter().partition(|t| t.kind == TaskKind::Segment);
            tasks = rest;
            if let Err(e) = publish(self.transport.as_ref(), segments).await {
                return (Some(Err(e)), asked);
            }
        }
        if !records.is_empty()
            && let Some(mut journal) = self.journal.take()
        {
            let appended = if self.store.blocks() {
                blocking("writing the job journal", move || {
                    journal.append(&records)?;
                    Ok(journal)
                })
                .await
            } else {
                let what = "writing the job journal";
                journal
                    .append(&records)
                    .map(|()| journal)
                    .map_err(|source| JobError::Store { what: what.into(), source })
            };
            match appended {
                Ok(journal) => self.journal = Some(journal),
                Err(e) => return (Some(Err(e)), asked),
            }
        }
        if end.is_none()
            && let Err(e) = publish(self.transport.as_ref(), tasks).await
        {
            return (Some(Err(e)), asked);
        }
        for (task, attempt) in abandon {
            let control = Control::AbandonTask { job: self.job.clone(), run: self.run, task, attempt };
            if let Err(e) = self.transport.broadcast(control).await {
                tracing::warn!(job = %self.job, error = %e, "could not broadcast an abandoned attempt");
            }
        }
        (end, asked)
    }

    /// Wrap the root; an input wrap could not read (root or leaf, corrupt or missing)
    /// comes back as [`WrapFailure::Unusable`] for the ledger to repair.
    async fn wrap(&mut self, root: ArtifactRef) -> Result<JobOutput, WrapFailure> {
        let started = Instant::now();
        let outcome = self.run_wrap(root).await;
        let wrapped = if outcome.is_ok() { TaskOutcome::Done } else { TaskOutcome::Failed };
        metrics::task_finished(Kind::Wrap, wrapped, Some(started.elapsed()));
        if let Some(spans) = self.wrap_spans.as_mut() {
            let n = self.ledger.as_ref().map_or(0, |l| l.progress().segments_total);
            spans.push(Span {
                task: "wrap".into(),
                kind: SpanKind::Wrap,
                first: 0,
                end: n,
                attempt: spans.len() as u32 + 1,
                lane: "leader".into(),
                start: started.saturating_duration_since(self.started),
                finish: self.started.elapsed(),
                outcome: if outcome.is_ok() { SpanEnd::Done } else { SpanEnd::Failed },
            });
        }
        let proof = outcome?;
        let mut stats = self.ledger().stats();
        stats.wrap = started.elapsed();
        stats.elapsed = self.started.elapsed();
        let timeline = self.timeline();
        Ok(JobOutput { job: self.job.clone(), plugin: self.plugin.id(), proof, stats, timeline })
    }

    /// Every attempt so far and wrap's, if a timeline is recorded.
    fn timeline(&self) -> Option<Timeline> {
        let wraps = self.wrap_spans.as_ref()?;
        // The ledger times spans from its start, the actor from its own: the same
        // message, microseconds apart.
        let spans = self.ledger.as_ref().map(JobLedger::spans).unwrap_or_default();
        let spans = spans.iter().chain(wraps).cloned().collect();
        Some(Timeline { spans, elapsed: self.started.elapsed() })
    }

    async fn run_wrap(&mut self, root: ArtifactRef) -> Result<Vec<u8>, WrapFailure> {
        let (store, plugin, job, meta) =
            (self.store.clone(), self.plugin.clone(), self.job.clone(), self.meta.clone());
        let n = self.ledger.as_ref().map_or(0, |l| l.progress().segments_total);
        let journal = self.journal.as_ref().expect("a started job has a journal").view();
        let leaves = StoreLeaves::new(store, journal, n);
        let wrapped = in_place("wrap", move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                wrap_with(plugin.as_ref(), &job, &meta, &root, &leaves)
            }))
            .unwrap_or_else(|_| Err(Err(PluginError::permanent("wrap panicked"))))
        })
        .await
        .map_err(WrapFailure::Failed)?;
        match wrapped {
            Ok(proof) => Ok(proof),
            Err(Ok((uri, leaf, message))) => Err(WrapFailure::Unusable { uri, leaf, message }),
            Err(Err(e)) => Err(WrapFailure::Failed(JobError::Wrap(e))),
        }
    }

    /// Step 4: the job is over, whatever happened.
    async fn end(&mut self, outcome: Result<JobOutput, JobError>) {
        metrics::forget_job(&self.job);
        let finished = match &outcome {
            Ok(_) => metrics::JobOutcome::Proven,
            Err(e) if e.is_cancelled() => metrics::JobOutcome::Cancelled,
            Err(_) => metrics::JobOutcome::Failed,
        };
        metrics::job_finished(finished, self.started.elapsed());
        let woken = {
            let mut dispatcher = self.dispatcher.lock().expect("dispatcher lock");
            let woken = dispatcher.leave(&self.job);
            metrics::set_running_jobs(dispatcher.jobs());
            woken
        };
        // Late results of this job have nowhere to go; the router drops them.
        self.routes.lock().expect("routes lock").remove(&self.job);
        wake(&self.routes, &woken);
        if let Err(e) = self.transport.cancel_job(&self.job, self.run).await {
            tracing::warn!(job = %self.job, error = %e, "could not broadcast the end of the job");
        }
        if let Some(lease) = self.lease.take() {
            match tokio::task::spawn_blocking(move || lease.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(job = %self.job, error = %e, "could not release the job's lease")
                }
                Err(e) => tracing::warn!(job = %self.job, error = %e, "releasing the job's lease panicked"),
            }
        }
        if let Some(done) = self.done.take() {
            let timeline = match &outcome {
                Ok(output) => output.timeline.clone(),
                Err(_) => self.timeline(),
            };
            let _ = done.send((outcome, timeline));
        }
    }
}

/// Hand `tasks` (if any) to the broker.
async fn publish(transport: &dyn Transport, tasks: Vec<Task>) -> Result<(), JobError> {
    if tasks.is_empty() { Ok(()) } else { transport.publish(tasks).await.map_err(JobError::Transport) }
}

/// Why wrap did not produce a proof.
enum WrapFailure {
    /// It could not read `uri` (corrupt or missing): the ledger can have it remade.
    Unusable {
        uri: String,
        /// The leaf's index; `None` for the root.
        leaf: Option<u32>,
        message: String,
    },
    Failed(JobError),
}

/// Tell `jobs` that they were granted slots.
fn wake(routes: &Routes, jobs: &[String]) {
    if jobs.is_empty() {
        return;
    }
    let routes = routes.lock().expect("routes lock");
    for job in jobs {
        if let Some((actor, _)) = routes.get(job) {
            let _ = actor.cast(JobMsg::Dispatch);
        }
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
        myself.send_interval(TICK, || JobMsg::Tick);
        Ok(JobState {
            job: args.job,
            run: args.run,
            plugin: args.plugin,
            config: args.config,
            reply_to: args.reply_to,
            transport: args.transport,
            store: args.store,
            progress: args.progress,
            inbox: args.inbox,
            done: Some(args.done),
            started: Instant::now(),
            pending: Some(args.start),
            ledger: None,
            journal: None,
            segment_parts: Vec::new(),
            lease: Some(Arc::new(args.lease)),
            last_lease_refresh: Instant::now(),
            meta: Vec::new(),
            dispatcher: args.dispatcher,
            routes: args.routes,
            wrap_spans: args.timeline.then(Vec::new),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<JobMsg>,
        msg: JobMsg,
        state: &mut JobState,
    ) -> Result<(), ActorProcessingErr> {
        if state.done.is_none() {
            return Ok(());
        }
        let now = Instant::now();
        let before = state.ledger.as_ref().map(JobLedger::stats).unwrap_or_default();
        let fx = match msg {
            JobMsg::Start => state.start().await,
            JobMsg::Cancel(reason) if state.ledger.is_none() => {
                Err(JobError::Failed(super::ledger::Failure::Cancelled(reason)))
            }
            JobMsg::Cancel(reason) => Ok(state.ledger().cancel(&reason)),
            JobMsg::ResultsLost(e) => Err(JobError::Transport(e)),
            _ if state.ledger.is_none() => Ok(Vec::new()),
            JobMsg::ResultsReady => {
                let results = state.inbox.take();
                state.saw_lanes(&results, now);
                for r in &results {
                    if let Some(outcome) = TaskOutcome::of(&r.outcome) {
                        let kind = if r.task.starts_with("agg-") { Kind::Aggregate } else { Kind::Segment };
                        metrics::task_finished(kind, outcome, Some(Duration::from_micros(r.exec_micros)));
                    }
                }
                Ok(state.ledger().on_results(results, now))
            }
            JobMsg::Dispatch => Ok(Vec::new()),
            JobMsg::Tick => {
                state.dispatcher.lock().expect("dispatcher lock").forget_idle_lanes(now);
                state.refresh_lease().await.map(|()| state.ledger().on_tick(now))
            }
        };
        let fx = fx.map(|mut fx| {
            fx.extend(state.dispatch_ready(now));
            fx
        });
        let mut end = match fx {
            Ok(fx) => state.carry_out(fx).await,
            Err(e) => Some(Err(e)),
        };
        state.report(&before);
        if let Some(ledger) = &state.ledger {
            let mut progress = ledger.progress().clone();
            progress.elapsed = state.started.elapsed();
            state.progress.send_replace(progress);
        }
        let outcome = loop {
            match end {
                None => return Ok(()),
                Some(Err(e)) => break Err(e),
                Some(Ok(root)) => match state.wrap(root).await {
                    Ok(output) => break Ok(output),
                    Err(WrapFailure::Failed(e)) => break Err(e),
                    // A root or leaf is corrupt or missing: the ledger has it remade, and
                    // wrap runs again when that is done.
                    Err(WrapFailure::Unusable { uri, leaf, message }) => {
                        let fx = state.ledger().on_wrap_input_unusable(&uri, leaf, &message, Instant::now());
                        end = state.carry_out(fx).await;
                    }
                },
            }
        };
        state.end(outcome).await;
        myself.stop(None);
        Ok(())
    }
}
