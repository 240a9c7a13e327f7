//! The leader: runs jobs. One [`Leader`] per process owns the result queue and routes
//! results to a [`job`] actor per job, which plans nothing itself (the caller plans, so
//! bad input is rejected before anything is published). The job's decisions (fold,
//! retry, deadlines, repair) live in the pure [`ledger`]; the actor carries them out.
//!
//! # A job's life, as the caller sees it
//! 1. [`Leader::submit`] (or [`Leader::resume`]) takes the job's lease in the store, so
//!    no second leader drives the same job, and starts its actor.
//! 2. [`JobHandle::wait`] returns the proof. The job's artifacts are still in the store.
//! 3. The caller makes the proof durable (writes and syncs it), then calls
//!    [`Leader::discard`]. If writing fails, the job stays resumable with `--resume`.

pub mod hunger;
mod job;
mod journal;
mod lease;
pub mod ledger;
pub mod scheduler;
mod segments;
pub mod timeline;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::{oneshot, watch};

use crate::plugin::{Plan, PluginId, ProofSystem};
use crate::store::ArtifactStore;
use crate::task::new_job_id;
use crate::transport::Transport;
use hunger::{GiveBack, Holdings};
use job::{JobActor, JobArgs, JobMsg, JobStart};
pub use journal::{JournalError, Manifest};
pub use lease::{
    Lease, LeaseDecision, LeaseError, LeaseRecord, decide as decide_lease, lease_is_live, new_holder_id,
};
use scheduler::{Dispatcher, Scheduling};
use timeline::Timeline;

/// Policies of a job.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Dispatches of one task before the job fails.
    pub max_attempts: u32,
    /// No result and no heartbeat from a task for this long: send it again.
    pub task_deadline: Duration,
    /// The longest one attempt may run before it is abandoned and sent again
    /// (`None`: the plugin's estimate from the task's cost).
    pub task_timeout: Option<Duration>,
    /// Keep the job's artifacts in the store after [`Leader::discard`].
    pub keep_artifacts: bool,
    /// How long a job's lease outlives its last refresh (a dead leader's job can be
    /// resumed after this). Refreshed every third of it.
    pub lease_ttl: Duration,
    /// How jobs share the workers.
    pub scheduling: Scheduling,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            task_deadline: Duration::from_secs(600),
            task_timeout: None,
            keep_artifacts: false,
            lease_ttl: Duration::from_secs(15),
            scheduling: Scheduling::default(),
        }
    }
}

/// Where a job stands; published on every change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub segments_done: u32,
    pub segments_total: u32,
    pub aggregations_done: u32,
    pub aggregations_total: u32,
    /// Height of the tallest finished part of the fold tree.
    pub depth: u32,
    pub cost_done: u64,
    pub cost_total: u64,
    pub elapsed: Duration,
}

/// What happened while proving, for logs and benchmarks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobStats {
    pub segments: u32,
    pub aggregations: u32,
    pub depth: u32,
    /// Results for tasks that had already succeeded (dropped: first success wins).
    pub duplicates: u64,
    /// Re-dispatches after a retryable failure.
    pub retries: u64,
    /// Segments already proven by an earlier leader of this job (`--resume`).
    pub resumed_segments: u32,
    /// Corrupted artifacts recomputed.
    pub repairs: u64,
    /// Re-dispatches after no result or heartbeat within the silence deadline.
    pub redispatches: u64,
    /// Attempts abandoned (and re-dispatched) for running past their timeout.
    pub timeouts: u64,
    pub elapsed: Duration,
    pub wrap: Duration,
}

/// A finished job.
#[derive(Clone, Debug)]
pub struct JobOutput {
    pub job: String,
    pub plugin: PluginId,
    /// The plugin's final (wrapped) proof.
    pub proof: Vec<u8>,
    pub stats: JobStats,
    /// Every task attempt and wrap, when [`JobOptions::timeline`] asked for it.
    pub timeline: Option<Timeline>,
}

/// How one job is run among the leader's others.
#[derive(Clone, Debug, Default)]
pub struct JobOptions {
    /// Use this job id (`job-<hex>-<8 hex>`, see [`crate::task::new_job_id`]) instead of
    /// a fresh one: for callers that record the id before the job starts.
    pub id: Option<String>,
    /// Who the job is for: clients share the workers by weight
    /// ([`Scheduling::weights`]). Empty: the default client.
    pub client: String,
    /// Among one client's jobs, lower goes first (chain order: `batch` passes block
    /// numbers). `None`: the submission time in microseconds since the Unix epoch, so
    /// a service that records it keeps its jobs' order across restarts.
    pub order: Option<u64>,
    /// Record a [`Timeline`] of every task attempt (about 100 bytes per attempt).
    pub timeline: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The ledger gave up: a task failed for good, or the job was cancelled.
    #[error(transparent)]
    Failed(#[from] ledger::Failure),
    #[error("wrapping the root proof failed")]
    Wrap(#[source] crate::plugin::PluginError),
    #[error("artifact store: {what}")]
    Store {
        what: String,
        #[source]
        source: crate::store::StoreError,
    },
    #[error("transport")]
    Transport(#[source] crate::transport::TransportError),
    #[error("reading the job journal back: {what}")]
    Journal {
        what: String,
        #[source]
        source: JournalError,
    },
    #[error("cannot resume job {job}")]
    Resume {
        job: String,
        #[source]
        source: JournalError,
    },
    #[error("cannot resume job {job}: it needs plugin {plugin}, which this build does not have")]
    MissingPlugin { job: String, plugin: String },
    #[error("job lease")]
    Lease(#[source] LeaseError),
    #[error("{0}")]
    Internal(String),
}

impl JobError {
    /// The job was cancelled (by its caller, or Ctrl-C).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Failed(ledger::Failure::Cancelled(_)))
    }
}

/// A running job: watch its progress, wait for its proof, or cancel it.
pub struct JobHandle {
    pub job: String,
    pub progress: watch::Receiver<Progress>,
    actor: ActorRef<JobMsg>,
    done: oneshot::Receiver<Ended>,
}

/// How a job ended, and (when [`JobOptions::timeline`] asked for it) its timeline,
/// whatever the outcome.
pub(crate) type Ended = (Result<JobOutput, JobError>, Option<Timeline>);

impl JobHandle {
    /// The proof, once the job is over. Its artifacts stay in the store until
    /// [`Leader::discard`]: make the proof durable first.
    pub async fn wait(self) -> Result<JobOutput, JobError> {
        self.wait_with_timeline().await.0
    }

    /// [`wait`](Self::wait), with the job's timeline also when it failed or was
    /// cancelled (a proven job's is in [`JobOutput::timeline`] too).
    pub async fn wait_with_timeline(self) -> Ended {
        self.done.await.unwrap_or_else(|_| {
            (Err(JobError::Internal("the job actor stopped without an outcome".into())), None)
        })
    }

    pub fn cancel(&self, reason: &str) {
        self.canceller().cancel(reason);
    }

    /// A handle that can cancel the job after [`wait`](Self::wait) took `self`.
    pub fn canceller(&self) -> JobCanceller {
        JobCanceller { actor: self.actor.clone() }
    }
}

/// Cancels a running job: its queued tasks are dropped and workers abandon its running ones.
#[derive(Clone)]
pub struct JobCanceller {
    actor: ActorRef<JobMsg>,
}

impl JobCanceller {
    pub fn cancel(&self, reason: &str) {
        let _ = self.actor.cast(JobMsg::Cancel(reason.to_owned()));
    }
}

pub(crate) type Routes = Arc<Mutex<HashMap<String, (ActorRef<JobMsg>, Arc<Inbox>)>>>;

/// Results waiting for a job actor. The router appends and tells the actor only when
/// the inbox was empty; the actor takes everything at once. While the actor is busy
/// (publishing, waiting for confirms) results pile up here and are handled as one batch.
#[derive(Default)]
pub(crate) struct Inbox(Mutex<Vec<crate::task::TaskResult>>);

impl Inbox {
    fn push(&self, results: Vec<crate::task::TaskResult>) -> bool {
        let mut queue = self.0.lock().expect("inbox lock");
        let was_empty = queue.is_empty();
        queue.extend(results);
        was_empty
    }

    pub(crate) fn take(&self) -> Vec<crate::task::TaskResult> {
        std::mem::take(&mut *self.0.lock().expect("inbox lock"))
    }
}

/// The leader side of one process: one result queue, any number of jobs.
pub struct Leader {
    transport: Arc<dyn Transport>,
    store: Arc<dyn ArtifactStore>,
    config: LeaderConfig,
    results_queue: String,
    /// This leader incarnation, as it signs job leases (`host-16hex`).
    holder: String,
    routes: Routes,
    router: tokio::task::JoinHandle<()>,
    /// Answers hunger reports with give-backs ([`hunger`]).
    stealer: tokio::task::JoinHandle<()>,
    dispatcher: Arc<Mutex<Dispatcher>>,
    /// The last order given to a job without an explicit one (kept increasing).
    last_order: Mutex<u64>,
}

impl Leader {
    /// Open this process's result queue and start routing results to jobs.
    pub async fn start(
        transport: Arc<dyn Transport>,
        store: Arc<dyn ArtifactStore>,
        config: LeaderConfig,
    ) -> Result<Self, JobError> {
        let results_queue =
            format!("{}{}", crate::task::RESULTS_QUEUE_PREFIX, new_job_id().replace("job-", "leader-"));
        let mut results = transport.open_results(&results_queue).await.map_err(JobError::Transport)?;
        let hungers = transport.subscribe_hunger().await.map_err(JobError::Transport)?;
        let routes: Routes = Arc::default();
        let table = routes.clone();
        let broker = transport.describe();
        let holdings: Arc<Mutex<Holdings>> = Arc::default();
        let held = holdings.clone();
        let router = tokio::spawn(async move {
            let mut batch = Vec::new();
            while results.recv_many(&mut batch, 1024).await > 0 {
                let now = std::time::Instant::now();
                let mut by_job: HashMap<String, Vec<_>> = HashMap::new();
                let mut held = held.lock().expect("holdings lock");
                for result in batch.drain(..) {
                    held.report(result.worker(), result.held, now);
                    by_job.entry(result.job.clone()).or_default().push(result);
                }
                drop(held);
                for (job, results) in by_job {
                    let route = table.lock().expect("routes lock").get(&job).cloned();
                    match route {
                        Some((actor, inbox)) => {
                            if inbox.push(results) && actor.cast(JobMsg::ResultsReady).is_err() {
                                // The job ended; late duplicates have nowhere to go.
                                table.lock().expect("routes lock").remove(&job);
                            }
                        }
                        None => tracing::debug!(%job, "results of a finished job dropped"),
                    }
                }
            }
            // The stream ends only when the transport is lost (the broker stayed away past
            // its give-up time) or closed: no result can come, so fail every job now
            // (their artifacts stay, for `--resume`) instead of leaving them waiting.
            let orphans: Vec<_> = table.lock().expect("routes lock").drain().collect();
            for (job, (actor, _)) in orphans {
                tracing::error!(%job, %broker, "result stream ended; failing the job");
                let _ = actor.cast(JobMsg::ResultsLost(crate::transport::TransportError::Broker(format!(
                    "the result stream from {broker} ended (unreachable past the reconnect give-up time)"
                ))));
            }
        });
        let holder = new_holder_id();
        let dispatcher = Arc::new(Mutex::new(Dispatcher::new(config.scheduling.clone())));
        let stealer =
            tokio::spawn(direct_give_backs(hungers, holdings, dispatcher.clone(), transport.clone()));
        let last_order = Mutex::new(0);
        Ok(Self {
            transport,
            store,
            config,
            results_queue,
            holder,
            routes,
            router,
            stealer,
            dispatcher,
            last_order,
        })
    }

    /// Start proving `plan` (made by `plugin.plan`) as a new job.
    pub async fn submit(&self, plugin: Arc<dyn ProofSystem>, plan: Plan) -> Result<JobHandle, JobError> {
        self.submit_with(plugin, plan, JobOptions::default()).await
    }

    /// [`submit`](Self::submit) with a chosen id, client, order or timeline.
    pub async fn submit_with(
        &self,
        plugin: Arc<dyn ProofSystem>,
        plan: Plan,
        options: JobOptions,
    ) -> Result<JobHandle, JobError> {
        let job = match &options.id {
            Some(id) if crate::task::is_job_id(id) => id.clone(),
            Some(id) => return Err(JobError::Internal(format!("{id:?} is not a job id"))),
            None => new_job_id(),
        };
        let lease = self.take_lease(&job).await?;
        self.spawn_job(job, plugin, JobStart::New(plan), lease, options).await
    }

    /// Pick up `job` where an earlier leader left it: only work its journal does not
    /// show finished is dispatched. `plugins` must hold the job's exact plugin version.
    /// If another leader holds the job's lease, waits up to one lease lifetime for it
    /// to lapse (its leader died) and fails if it is still being refreshed.
    pub async fn resume(
        &self,
        job: &str,
        plugins: &crate::plugin::PluginRegistry,
    ) -> Result<JobHandle, JobError> {
        self.resume_with(job, plugins, JobOptions::default()).await
    }

    /// [`resume`](Self::resume) with a client, order or timeline (`options.id` is ignored).
    pub async fn resume_with(
        &self,
        job: &str,
        plugins: &crate::plugin::PluginRegistry,
        options: JobOptions,
    ) -> Result<JobHandle, JobError> {
        let (store, key) = (self.store.clone(), format!("{job}/manifest"));
        if job::blocking("looking for the job's manifest", move || store.get_raw(&key)).await?.is_none() {
            let source = JournalError::NoManifest { job: job.to_owned() };
            return Err(JobError::Resume { job: job.to_owned(), source });
        }
        // The lease before the journal: no other leader appends to it while it is read.
        let lease = self.take_lease(job).await?;
        let store = self.store.clone();
        let job_id = job.to_owned();
        let opened = tokio::task::spawn_blocking(move || journal::Journal::open(store, &job_id))
            .await
            .map_err(|e| JobError::Internal(format!("reading the journal: {e}")))?;
        let (journal, manifest, records) = match opened {
            Ok(opened) => opened,
            Err(source) => {
                let _ = tokio::task::spawn_blocking(move || lease.release()).await;
                return Err(JobError::Resume { job: job.to_owned(), source });
            }
        };
        let plugin = plugins.get_exact(&manifest.plugin).cloned().ok_or_else(|| JobError::MissingPlugin {
            job: job.to_owned(),
            plugin: manifest.plugin.clone(),
        })?;
        let (store, meta_ref) = (self.store.clone(), manifest.meta.clone());
        let meta = job::blocking("reading the job's metadata", move || store.get(&meta_ref)).await?;
        tracing::info!(%job, finished_tasks = records.len(), segments = manifest.pages.len(), "resuming: {}", manifest.summary);
        let start = JobStart::Resume { journal, manifest, records, meta };
        self.spawn_job(job.to_owned(), plugin, start, lease, options).await
    }

    /// Delete a finished job's artifacts (unless `keep_artifacts`): call it once the
    /// proof from [`JobHandle::wait`] is durable.
    pub async fn discard(&self, job: &str) -> Result<(), JobError> {
        if self.config.keep_artifacts {
            return Ok(());
        }
        let (store, prefix) = (self.store.clone(), job.to_owned());
        job::blocking("deleting the job's artifacts", move || store.delete_prefix(&prefix)).await
    }

    /// Take `job`'s lease for this leader, waiting for a stale one to lapse.
    async fn take_lease(&self, job: &str) -> Result<Lease, JobError> {
        let holder = self.holder.clone();
        let give_up = tokio::time::Instant::now() + self.config.lease_ttl + Duration::from_secs(1);
        loop {
            let (store, id, me, ttl) =
                (self.store.clone(), job.to_owned(), holder.clone(), self.config.lease_ttl);
            let taken = tokio::task::spawn_blocking(move || Lease::acquire(store, &id, &me, ttl))
                .await
                .map_err(|e| JobError::Internal(format!("taking the job lease: {e}")))?;
            match taken {
                Ok(lease) => return Ok(lease),
                Err(LeaseError::Held { expires_in, holder: other, .. })
                    if tokio::time::Instant::now() + expires_in <= give_up =>
                {
                    tracing::info!(%job, leader = %other, wait_s = expires_in.as_secs_f64(),
                        "another leader held this job; waiting for its lease to lapse");
                    tokio::time::sleep(expires_in + Duration::from_millis(50)).await;
                }
                Err(e) => return Err(JobError::Lease(e)),
            }
        }
    }

    async fn spawn_job(
        &self,
        job: String,
        plugin: Arc<dyn ProofSystem>,
        start: JobStart,
        lease: Lease,
        options: JobOptions,
    ) -> Result<JobHandle, JobError> {
        let (progress_tx, progress) = watch::channel(Progress::default());
        let order = options.order.unwrap_or_else(|| self.submission_order());
        {
            let mut dispatcher = self.dispatcher.lock().expect("dispatcher lock");
            dispatcher.join(&job, &options.client, order);
            crate::metrics::leader::set_running_jobs(dispatcher.jobs());
        }
        let (done_tx, done) = oneshot::channel();
        let args = JobArgs {
            job: job.clone(),
            run: new_run_id(),
            plugin,
            start,
            config: self.config.clone(),
            reply_to: self.results_queue.clone(),
            transport: self.transport.clone(),
            store: self.store.clone(),
            lease,
            progress: progress_tx,
            done: done_tx,
            inbox: Arc::default(),
            dispatcher: self.dispatcher.clone(),
            routes: self.routes.clone(),
            timeline: options.timeline,
        };
        let inbox = args.inbox.clone();
        let (actor, _) = match Actor::spawn(None, JobActor, args).await {
            Ok(spawned) => spawned,
            Err(e) => {
                self.dispatcher.lock().expect("dispatcher lock").leave(&job);
                return Err(JobError::Internal(format!("could not start the job actor: {e}")));
            }
        };
        // Route results before the first task goes out.
        self.routes.lock().expect("routes lock").insert(job.clone(), (actor.clone(), inbox));
        actor.cast(JobMsg::Start).map_err(|e| JobError::Internal(format!("job actor gone: {e}")))?;
        Ok(JobHandle { job, progress, actor, done })
    }

    /// Prove one plan to the end and return the proof in memory; the job's artifacts
    /// are deleted afterwards (unless `keep_artifacts`). Callers that must persist the
    /// proof before anything is deleted use [`submit`](Self::submit),
    /// [`JobHandle::wait`] and [`discard`](Self::discard).
    pub async fn prove(&self, plugin: Arc<dyn ProofSystem>, plan: Plan) -> Result<JobOutput, JobError> {
        let handle = self.submit(plugin, plan).await?;
        let job = handle.job.clone();
        let out = handle.wait().await;
        if out.is_ok() {
            self.discard(&job).await?;
        }
        out
    }
}

impl Leader {
    /// Microseconds since the Unix epoch, strictly increasing per leader.
    fn submission_order(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut last = self.last_order.lock().expect("order lock");
        *last = now.max(*last + 1);
        *last
    }
}

/// A number for one run of a job: fresh per leader incarnation.
fn new_run_id() -> u64 {
    u64::from_str_radix(&crate::store::unique_hex(), 16).expect("16 hex digits")
}

/// Answer each hunger report with a give-back directed at the holder [`Holdings`]
/// picks (see [`hunger`]). A hungry worker's lanes count as seen by the dispatcher, so a
/// worker that just joined widens the dispatch window before it has run anything.
async fn direct_give_backs(
    mut hungers: crate::transport::ControlStream,
    holdings: Arc<Mutex<Holdings>>,
    dispatcher: Arc<Mutex<Dispatcher>>,
    transport: Arc<dyn Transport>,
) {
    while let Some(report) = hungers.recv().await {
        let crate::task::Control::Hungry { worker, idle_lanes, lanes } = report else {
            tracing::debug!(?report, "not a hunger report; ignored");
            continue;
        };
        let now = std::time::Instant::now();
        {
            let mut dispatcher = dispatcher.lock().expect("dispatcher lock");
            for lane in 0..lanes.min(1024) {
                dispatcher.saw_lane(&format!("{worker}/{lane}"), now);
            }
        }
        let give = holdings.lock().expect("holdings lock").on_hungry(&worker, idle_lanes, now);
        let Some(GiveBack { from, tasks }) = give else { continue };
        crate::metrics::leader::give_back_directed();
        tracing::debug!(hungry = %worker, %from, tasks, "directing a give-back");
        if let Err(e) = transport.direct(&from, crate::task::Control::GiveBack { tasks }).await {
            tracing::debug!(error = %e, "give-back not sent");
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.router.abort();
        self.stealer.abort();
    }
}
