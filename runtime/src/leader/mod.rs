//! The leader: runs jobs. One [`Leader`] per process owns the result queue and routes
//! results to a [`job`] actor per job, which plans nothing itself (the caller plans, so
//! bad input is rejected before anything is published), folds, retries and wraps.

mod job;
mod journal;
mod lease;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use tokio::sync::{oneshot, watch};

use crate::plugin::{Plan, PluginId, ProofSystem};
use crate::store::ArtifactStore;
use crate::task::new_job_id;
use crate::transport::Transport;
use job::{JobActor, JobArgs, JobMsg, JobStart};
pub use journal::{JournalError, Manifest};
pub use lease::{
    Lease, LeaseDecision, LeaseError, LeaseRecord, decide as decide_lease, lease_is_live, new_holder_id,
};

/// Policies of a job.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    /// Dispatches of one task before the job fails.
    pub max_attempts: u32,
    /// How long to wait for a task's result before sending it again.
    pub task_deadline: Duration,
    /// Keep the job's artifacts in the store after it ends.
    pub keep_artifacts: bool,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self { max_attempts: 3, task_deadline: Duration::from_secs(600), keep_artifacts: false }
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
    /// Re-dispatches after a missed deadline.
    pub redispatches: u64,
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
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("task {task} failed after {attempts} attempt(s): {message}")]
    TaskFailed { task: String, attempts: u32, message: String },
    #[error("wrapping the root proof failed: {0}")]
    Wrap(String),
    #[error("artifact store: {0}")]
    Store(String),
    #[error("transport: {0}")]
    Transport(String),
    #[error("job cancelled: {0}")]
    Cancelled(String),
    #[error("cannot resume: {0}")]
    Resume(String),
}

/// A running job: watch its progress, wait for its proof, or cancel it.
pub struct JobHandle {
    pub job: String,
    pub progress: watch::Receiver<Progress>,
    actor: ActorRef<JobMsg>,
    done: oneshot::Receiver<Result<JobOutput, JobError>>,
}

impl JobHandle {
    pub async fn wait(self) -> Result<JobOutput, JobError> {
        self.done.await.unwrap_or_else(|_| Err(JobError::Cancelled("leader actor stopped".into())))
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

type Routes = Arc<Mutex<HashMap<String, (ActorRef<JobMsg>, Arc<Inbox>)>>>;

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
    routes: Routes,
    router: tokio::task::JoinHandle<()>,
}

impl Leader {
    /// Open this process's result queue and start routing results to jobs.
    pub async fn start(
        transport: Arc<dyn Transport>,
        store: Arc<dyn ArtifactStore>,
        config: LeaderConfig,
    ) -> Result<Self, JobError> {
        let results_queue = format!("proofline.results.{}", new_job_id().replace("job-", "leader-"));
        let mut results =
            transport.open_results(&results_queue).await.map_err(|e| JobError::Transport(e.to_string()))?;
        let routes: Routes = Arc::default();
        let table = routes.clone();
        let broker = transport.describe();
        let router = tokio::spawn(async move {
            let mut batch = Vec::new();
            while results.recv_many(&mut batch, 1024).await > 0 {
                let mut by_job: HashMap<String, Vec<_>> = HashMap::new();
                for result in batch.drain(..) {
                    by_job.entry(result.job.clone()).or_default().push(result);
                }
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
                let _ = actor.cast(JobMsg::Cancel(format!(
                    "transport: the result stream from broker {broker} ended (unreachable past the \
                     reconnect give-up time); resume with --resume {job}"
                )));
            }
        });
        Ok(Self { transport, store, config, results_queue, routes, router })
    }

    /// Start proving `plan` (made by `plugin.plan`) as a new job.
    pub async fn submit(&self, plugin: Arc<dyn ProofSystem>, plan: Plan) -> Result<JobHandle, JobError> {
        self.spawn_job(new_job_id(), plugin, JobStart::New(plan)).await
    }

    /// Pick up `job` where an earlier leader left it: only work its journal does not
    /// show finished is dispatched. `plugins` must hold the job's exact plugin version.
    pub async fn resume(
        &self,
        job: &str,
        plugins: &crate::plugin::PluginRegistry,
    ) -> Result<JobHandle, JobError> {
        let store = self.store.clone();
        let job_id = job.to_owned();
        let opened = tokio::task::spawn_blocking(move || journal::Journal::open(store, &job_id))
            .await
            .map_err(|e| JobError::Store(e.to_string()))?;
        let (journal, manifest, records) = opened.map_err(|e| JobError::Resume(e.to_string()))?;
        let plugin = plugins.get_exact(&manifest.plugin).cloned().ok_or_else(|| {
            JobError::Resume(format!(
                "job {job} needs plugin {}, which this build does not have",
                manifest.plugin
            ))
        })?;
        let store = self.store.clone();
        let meta_ref = manifest.meta.clone();
        let meta = tokio::task::spawn_blocking(move || store.get(&meta_ref))
            .await
            .map_err(|e| JobError::Store(e.to_string()))?
            .map_err(|e| JobError::Store(e.to_string()))?;
        tracing::info!(%job, finished_tasks = records.len(), segments = manifest.segments.len(), "resuming: {}", manifest.summary);
        self.spawn_job(job.to_owned(), plugin, JobStart::Resume { journal, manifest, records, meta }).await
    }

    async fn spawn_job(
        &self,
        job: String,
        plugin: Arc<dyn ProofSystem>,
        start: JobStart,
    ) -> Result<JobHandle, JobError> {
        let (progress_tx, progress) = watch::channel(Progress::default());
        let (done_tx, done) = oneshot::channel();
        let args = JobArgs {
            job: job.clone(),
            plugin,
            start,
            config: self.config.clone(),
            reply_to: self.results_queue.clone(),
            transport: self.transport.clone(),
            store: self.store.clone(),
            progress: progress_tx,
            done: done_tx,
            inbox: Arc::default(),
        };
        let inbox = args.inbox.clone();
        let (actor, _) = Actor::spawn(None, JobActor, args)
            .await
            .map_err(|e| JobError::Cancelled(format!("could not start the job actor: {e}")))?;
        // Route results before the first task goes out.
        self.routes.lock().expect("routes lock").insert(job.clone(), (actor.clone(), inbox));
        actor.cast(JobMsg::Start).map_err(|e| JobError::Cancelled(format!("job actor gone: {e}")))?;
        Ok(JobHandle { job, progress, actor, done })
    }

    /// Prove one plan to the end.
    pub async fn prove(&self, plugin: Arc<dyn ProofSystem>, plan: Plan) -> Result<JobOutput, JobError> {
        let handle = self.submit(plugin, plan).await?;
        let job = handle.job.clone();
        let out = handle.wait().await;
        self.routes.lock().expect("routes lock").remove(&job);
        out
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        self.router.abort();
    }
}
