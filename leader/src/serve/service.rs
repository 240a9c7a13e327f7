//! The service's jobs in memory: the table the API reads and the scheduler claims
//! from, and the operations behind the API (submit, look up, cancel, delete, fetch a
//! proof). Decisions come from [`super::state`] and [`super::queue`]; the store
//! records from [`super::registry`].
//!
//! Submitting a job:
//!
//! 1. a queue slot is reserved (429 when `--max-queued` jobs wait already);
//! 2. the input is planned (400 with the plugin's message when it is bad: nothing is
//!    stored);
//! 3. the input, then the `queued` record, are written durably to the store;
//! 4. the job enters the table and the scheduler is woken; only now the API answers 202.
//!
//! Every record change goes through [`Service::apply`] (the state machine) and
//! [`Service::persist`], which writes one job's record at a time under that job's
//! write lock, cloning it only once the lock is held, so the last write is the newest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proofline_runtime::leader::{JobCanceller, Progress};
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem};
use proofline_runtime::store::ArtifactStore;
use tokio::sync::{Notify, watch};

use super::registry::{self, JobRecord};
use super::state::{Event, JobState};
use crate::prove::Cluster;

const STOPPING: &str = "the service is stopping (the job resumes when it starts again)";

/// Bounds of the service.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_jobs: usize,
    pub max_queued: usize,
    pub retention: Duration,
}

/// Why an operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    BadInput(String),
    #[error("the queue is full ({max} jobs wait already); try again later")]
    QueueFull { max: usize, retry_after: u64 },
    #[error("no job {0}")]
    NotFound(String),
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    Internal(String),
}

/// What a running job shows while it runs.
pub struct Live {
    pub progress: watch::Receiver<Progress>,
    pub canceller: JobCanceller,
}

struct Entry {
    record: JobRecord,
    live: Option<Live>,
    write: Arc<tokio::sync::Mutex<()>>,
    /// Fair-queueing start tag, given when it was queued ([`super::queue`]).
    tag: f64,
}

#[derive(Default)]
struct Table {
    jobs: HashMap<String, Entry>,
    /// Queue slots reserved by submissions still being planned and stored.
    reserved: usize,
    /// Seconds recent jobs ran (for `Retry-After`).
    recent: VecDeque<f64>,
    last_order: u64,
    /// Fair queueing: the start tag of the last job started, and each client's
    /// finish tag ([`super::queue`]).
    virtual_time: f64,
    finish: HashMap<String, f64>,
}

/// A job as the API shows it: its record, and its live progress while it runs.
pub struct Snapshot {
    pub record: JobRecord,
    pub progress: Option<Progress>,
}

pub struct Service {
    pub store: Arc<dyn ArtifactStore>,
    pub cluster: Cluster,
    pub plugins: PluginRegistry,
    pub plugin: Arc<dyn ProofSystem>,
    pub plan_options: PlanOptions,
    pub limits: Limits,
    pub fair: bool,
    pub weights: HashMap<String, u32>,
    table: Mutex<Table>,
    /// Wakes the scheduler: a job was queued or a slot freed.
    pub wake: Notify,
    pub stopping: AtomicBool,
    pub ready: AtomicBool,
    /// Runner tasks not yet ended (the shutdown waits for them).
    pub runners: AtomicUsize,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

impl Service {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn ArtifactStore>,
        cluster: Cluster,
        plugins: PluginRegistry,
        plugin: Arc<dyn ProofSystem>,
        plan_options: PlanOptions,
        limits: Limits,
        fair: bool,
        weights: HashMap<String, u32>,
    ) -> Self {
        Self {
            store,
            cluster,
            plugins,
            plugin,
            plan_options,
            limits,
            fair,
            weights,
            table: Mutex::default(),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            ready: AtomicBool::new(false),
            runners: AtomicUsize::new(0),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("service table lock")
    }

    /// Export the number of queued and running jobs (`proofline_jobs`); called after
    /// every change of the table. A claimed job counts as running at once, as the API
    /// shows it, although the leader starts it only once its input is planned.
    fn publish(table: &Table) {
        let count = |state| table.jobs.values().filter(|e| e.record.state == state).count();
        proofline_runtime::metrics::leader::set_queued_jobs(count(JobState::Queued));
        proofline_runtime::metrics::leader::set_started_jobs(count(JobState::Running));
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Steps 1-4 of the module doc; returns the queued record. Runs as a task of its
    /// own: a client that hangs up mid-way cannot leave a job recorded but not queued.
    pub async fn submit(self: &Arc<Self>, input: Vec<u8>, client: String) -> Result<JobRecord, ServiceError> {
        let svc = self.clone();
        tokio::spawn(async move {
            if svc.is_stopping() {
                return Err(ServiceError::ShuttingDown);
            }
            svc.reserve()?;
            let outcome = svc.submit_reserved(input, client).await;
            svc.table().reserved -= 1;
            let record = outcome?;
            svc.wake.notify_one();
            Ok(record)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("submission task: {e}")))?
    }

    /// 429 before a body is read: whether the queue has room now (submit checks again).
    pub fn check_room(&self) -> Result<(), ServiceError> {
        if self.is_stopping() {
            return Err(ServiceError::ShuttingDown);
        }
        self.reserve()?;
        self.table().reserved -= 1;
        Ok(())
    }

    fn reserve(&self) -> Result<(), ServiceError> {
        let mut table = self.table();
        let queued = table.jobs.values().filter(|e| e.record.state == JobState::Queued).count();
        if !super::queue::admit(queued + table.reserved, self.limits.max_queued) {
            let mean = (!table.recent.is_empty())
                .then(|| table.recent.iter().sum::<f64>() / table.recent.len() as f64);
            let per_slot = mean.map(|m| m / self.limits.max_jobs.max(1) as f64);
            return Err(ServiceError::QueueFull {
                max: self.limits.max_queued,
                retry_after: super::queue::retry_after_secs(per_slot),
            });
        }
        table.reserved += 1;
        Ok(())
    }

    async fn submit_reserved(&self, input: Vec<u8>, client: String) -> Result<JobRecord, ServiceError> {
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(ServiceError::BadInput(
                "no input in the request body: POST a block with its execution witness".into(),
            ));
        }
        let plugin = self.plugin.clone();
        let opts = self.plan_options.clone();
        let (plan, input) = tokio::task::spawn_blocking(move || {
            let plan = crate::prove::plan_input(plugin.as_ref(), &input, "in the request body", &opts);
            (plan, input)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("planning panicked: {e}")))?;
        let plan = plan.map_err(|f| match f.code {
            2 => ServiceError::BadInput(f.message),
            _ => ServiceError::Internal(f.message),
        })?;
        let id = proofline_runtime::task::new_job_id();
        let order = self.next_order();
        let job = id.clone();
        let stored = registry::blocking(&self.store, move |s| registry::put_input(s, &job, &input)).await;
        let input_ref = stored.map_err(|e| ServiceError::Internal(format!("storing the input: {e}")))?;
        let plugin_id = self.plugin.id().to_string();
        let record = JobRecord::new(id.clone(), client, order, order / 1000, plugin_id, &plan, input_ref);
        let saved = record.clone();
        registry::blocking(&self.store, move |s| registry::save(s, &saved))
            .await
            .map_err(|e| ServiceError::Internal(format!("recording the job: {e}")))?;
        tracing::info!(job = %id, client = %record.client, "accepted: {}", record.summary);
        self.insert(record.clone());
        Ok(record)
    }

    /// Microseconds since the epoch, strictly increasing: the jobs' submission order.
    fn next_order(&self) -> u64 {
        let mut table = self.table();
        table.last_order = now_micros().max(table.last_order + 1);
        table.last_order
    }

    /// Add a record to the table (submitted, or restored from the store).
    pub fn insert(&self, record: JobRecord) {
        let mut table = self.table();
        table.last_order = table.last_order.max(record.order);
        let mut tag = 0.0;
        if record.state == JobState::Queued {
            let weight = self.weights.get(&record.client).copied().unwrap_or(1);
            let (start, finish) =
                super::queue::tag(table.virtual_time, table.finish.get(&record.client).copied(), weight);
            table.finish.insert(record.client.clone(), finish);
            tag = start;
        }
        let entry = Entry { record, live: None, write: Arc::default(), tag };
        table.jobs.insert(entry.record.id.clone(), entry);
        Self::publish(&table);
    }

    pub fn get(&self, id: &str) -> Option<Snapshot> {
        let table = self.table();
        let entry = table.jobs.get(id)?;
        let progress = entry.live.as_ref().map(|l| l.progress.borrow().clone());
        Some(Snapshot { record: entry.record.clone(), progress })
    }

    /// The newest `limit` jobs (optionally in one state), newest first.
    pub fn list(&self, limit: usize, state: Option<JobState>) -> Vec<Snapshot> {
        let table = self.table();
        let mut entries: Vec<&Entry> =
            table.jobs.values().filter(|e| state.is_none_or(|s| e.record.state == s)).collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.record.order));
        entries
            .into_iter()
            .take(limit)
            .map(|e| Snapshot {
                record: e.record.clone(),
                progress: e.live.as_ref().map(|l| l.progress.borrow().clone()),
            })
            .collect()
    }

    /// Move `id` by `event`, updating its record with `update` when the move applies.
    /// `None`: unknown job, or the event does not apply in its state.
    pub fn apply(&self, id: &str, event: Event, update: impl FnOnce(&mut JobRecord)) -> Option<JobRecord> {
        let mut table = self.table();
        let entry = table.jobs.get_mut(id)?;
        let next = super::state::next(entry.record.state, event)?;
        entry.record.state = next;
        update(&mut entry.record);
        let record = entry.record.clone();
        Self::publish(&table);
        Some(record)
    }

    pub fn state(&self, id: &str) -> Option<JobState> {
        self.table().jobs.get(id).map(|e| e.record.state)
    }

    /// Write `id`'s current record to the store (see the module doc).
    pub async fn persist(&self, id: &str) -> Result<(), String> {
        let Some(lock) = self.table().jobs.get(id).map(|e| e.write.clone()) else {
            return Ok(()); // deleted meanwhile
        };
        let _held = lock.lock().await;
        let Some(record) = self.table().jobs.get(id).map(|e| e.record.clone()) else { return Ok(()) };
        registry::blocking(&self.store, move |s| registry::save(s, &record)).await.map_err(|e| e.to_string())
    }

    /// Claim the next job to run: moves it to `running` in memory (the runner records
    /// it). `None` when no slot is free, nothing waits, or the service is stopping.
    pub fn claim_next(&self) -> Option<JobRecord> {
        if self.is_stopping() {
            return None;
        }
        let mut table = self.table();
        let running = table.jobs.values().filter(|e| e.record.state == JobState::Running).count();
        if running >= self.limits.max_jobs {
            return None;
        }
        let queued: Vec<&Entry> =
            table.jobs.values().filter(|e| e.record.state == JobState::Queued).collect();
        let candidates: Vec<_> =
            queued.iter().map(|e| super::queue::Candidate { tag: e.tag, order: e.record.order }).collect();
        let pick = super::queue::next_to_start(&candidates, self.fair)?;
        let (id, tag) = (queued[pick].record.id.clone(), queued[pick].tag);
        table.virtual_time = table.virtual_time.max(tag);
        let entry = table.jobs.get_mut(&id).expect("picked from the table");
        entry.record.state = super::state::next(entry.record.state, Event::Start)?;
        entry.record.started_ms = Some(now_ms());
        entry.record.finished_ms = None;
        let record = entry.record.clone();
        Self::publish(&table);
        Some(record)
    }

    /// The job started on the leader: show its progress, and cancel it at once if a
    /// `DELETE` came while it was starting.
    pub fn attach(&self, id: &str, live: Live) {
        let mut table = self.table();
        let Some(entry) = table.jobs.get_mut(id) else { return };
        if entry.record.state == JobState::Cancelled {
            live.canceller.cancel("cancelled by DELETE");
        } else if self.is_stopping() {
            live.canceller.cancel(STOPPING);
        }
        entry.live = Some(live);
    }

    /// The job's run ended: returns its last progress.
    pub fn detach(&self, id: &str) -> Option<Progress> {
        let live = self.table().jobs.get_mut(id)?.live.take()?;
        Some(live.progress.borrow().clone())
    }

    /// Note how long a finished job ran, for `Retry-After`.
    pub fn note_duration(&self, secs: f64) {
        let mut table = self.table();
        table.recent.push_back(secs);
        while table.recent.len() > 16 {
            table.recent.pop_front();
        }
    }

    /// `DELETE`: cancel a queued or running job (its record says `cancelled` durably
    /// before this returns), or delete a finished one and its proof (`None`). Runs as
    /// a task of its own, so a client that hangs up cannot cut it short.
    pub async fn cancel_or_delete(self: &Arc<Self>, id: &str) -> Result<Option<JobRecord>, ServiceError> {
        let (svc, id) = (self.clone(), id.to_owned());
        tokio::spawn(async move { svc.cancel_or_delete_now(&id).await })
            .await
            .map_err(|e| ServiceError::Internal(format!("cancel task: {e}")))?
    }

    async fn cancel_or_delete_now(&self, id: &str) -> Result<Option<JobRecord>, ServiceError> {
        let state = self.state(id).ok_or_else(|| ServiceError::NotFound(id.to_owned()))?;
        if state.is_final() {
            self.delete(id).await?;
            return Ok(None);
        }
        let Some(record) = self.apply(id, Event::Cancel, |r| r.finished_ms = Some(now_ms())) else {
            // It finished meanwhile: a second DELETE deletes it.
            return self.get(id).map(|s| Some(s.record)).ok_or_else(|| ServiceError::NotFound(id.to_owned()));
        };
        self.persist(id).await.map_err(|e| ServiceError::Internal(format!("recording the cancel: {e}")))?;
        if let Some(live) = self.table().jobs.get(id).and_then(|e| e.live.as_ref()) {
            live.canceller.cancel("cancelled by DELETE");
        }
        tracing::info!(job = %id, "cancelled");
        // A queued job never started: its slot in the queue is free now.
        self.wake.notify_one();
        Ok(Some(record))
    }

    /// Delete a finished job from the store, then from the table.
    pub async fn delete(&self, id: &str) -> Result<(), ServiceError> {
        let job = id.to_owned();
        registry::blocking(&self.store, move |s| registry::delete(s, &job))
            .await
            .map_err(|e| ServiceError::Internal(format!("deleting job {id}: {e}")))?;
        let mut table = self.table();
        table.jobs.remove(id);
        Self::publish(&table);
        Ok(())
    }

    /// Finished jobs whose retention has run out.
    pub fn expired(&self, now_ms: u64) -> Vec<String> {
        let retention = self.limits.retention;
        self.table()
            .jobs
            .values()
            .filter(|e| super::state::expired(e.record.state, e.record.finished_ms, now_ms, retention))
            .map(|e| e.record.id.clone())
            .collect()
    }

    /// Cancel every running job's current run (the service is stopping: their records
    /// stay `running`, and they resume when it starts again).
    pub fn interrupt_all(&self) -> usize {
        let table = self.table();
        let live: Vec<&Live> = table.jobs.values().filter_map(|e| e.live.as_ref()).collect();
        for l in &live {
            l.canceller.cancel(STOPPING);
        }
        live.len()
    }
}
