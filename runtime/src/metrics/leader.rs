//! Leader-side metrics: task attempts as the leader sees them, retries, re-dispatches,
//! repairs, jobs, and the outstanding work an autoscaler reads.
//!
//! Nothing here is labelled per job (that would make one series per job, forever).
//! A job's share of the outstanding work is set with [`set_job_outstanding`] and
//! dropped with [`forget_job`]; the exported gauges are the sums over all jobs.
//!
//! ```
//! use proofline_runtime::metrics::{self, leader};
//! metrics::install().unwrap();
//! leader::set_job_outstanding("job-a", 10, 4, 1000, 400);
//! leader::set_job_outstanding("job-b", 2, 0, 200, 0);
//! assert_eq!(leader::outstanding(), leader::Outstanding {
//!     ready_tasks: 12, dispatched_tasks: 4, ready_cost: 1200, dispatched_cost: 400,
//! });
//! leader::forget_job("job-a");
//! leader::forget_job("job-b");
//! ```

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use super::spec::{
    DISPATCH_WINDOW, GIVE_BACKS, JOB_DURATION, JOBS, JOBS_FINISHED, OUTSTANDING_COST, OUTSTANDING_TASKS,
    TASK_QUEUE_WAIT, TASK_REDISPATCHES, TASK_REPAIRS, TASK_RETRIES, TASK_RUN, TASKS,
};
use super::{Kind, Lazy, TaskOutcome, counter, gauge, histogram};

/// The `reason` label of a re-dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redispatch {
    /// No result and no heartbeat within the task deadline.
    Silent = 0,
    /// The attempt ran past its timeout.
    Timeout = 1,
}

impl Redispatch {
    pub const ALL: [Redispatch; 2] = [Redispatch::Silent, Redispatch::Timeout];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Silent => "silent",
            Self::Timeout => "timeout",
        }
    }
}

/// The `state` label of [`set_queued_jobs`] and [`set_running_jobs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    Queued = 0,
    Running = 1,
}

impl JobState {
    pub const ALL: [JobState; 2] = [JobState::Queued, JobState::Running];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
        }
    }
}

/// The `outcome` label of a finished job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    Proven = 0,
    Failed = 1,
    Cancelled = 2,
}

impl JobOutcome {
    pub const ALL: [JobOutcome; 3] = [JobOutcome::Proven, JobOutcome::Failed, JobOutcome::Cancelled];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proven => "proven",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// Outstanding work of the unfinished jobs, summed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outstanding {
    /// Tasks queued at the leader (ready, not yet dispatched).
    pub ready_tasks: u64,
    /// Tasks out with the workers (dispatched, no final result yet).
    pub dispatched_tasks: u64,
    /// Their estimated cost, in the plugin's cost unit.
    pub ready_cost: u64,
    pub dispatched_cost: u64,
}

impl Outstanding {
    fn add(&mut self, o: &Outstanding) {
        self.ready_tasks += o.ready_tasks;
        self.dispatched_tasks += o.dispatched_tasks;
        self.ready_cost += o.ready_cost;
        self.dispatched_cost += o.dispatched_cost;
    }

    fn sub(&mut self, o: &Outstanding) {
        self.ready_tasks -= o.ready_tasks;
        self.dispatched_tasks -= o.dispatched_tasks;
        self.ready_cost -= o.ready_cost;
        self.dispatched_cost -= o.dispatched_cost;
    }
}

struct Meters {
    tasks: [[Counter; 5]; 3],
    run: [Histogram; 3],
    wait: [Histogram; 3],
    retries: Counter,
    redispatches: [Counter; 2],
    repairs: Counter,
    give_backs: Counter,
    jobs: [Gauge; 2],
    finished: [Counter; 3],
    duration: Histogram,
    /// `[ready, dispatched]`.
    outstanding_tasks: [Gauge; 2],
    outstanding_cost: [Gauge; 2],
    window: Gauge,
}

const READY: (&str, &str) = ("state", "ready");
const DISPATCHED: (&str, &str) = ("state", "dispatched");

impl Meters {
    fn register() -> Self {
        Self {
            tasks: Kind::ALL.map(|k| {
                TaskOutcome::ALL.map(|o| counter(TASKS, &[("kind", k.as_str()), ("outcome", o.as_str())]))
            }),
            run: Kind::ALL.map(|k| histogram(TASK_RUN, &[("kind", k.as_str())])),
            wait: Kind::ALL.map(|k| histogram(TASK_QUEUE_WAIT, &[("kind", k.as_str())])),
            retries: counter(TASK_RETRIES, &[]),
            redispatches: Redispatch::ALL.map(|r| counter(TASK_REDISPATCHES, &[("reason", r.as_str())])),
            repairs: counter(TASK_REPAIRS, &[]),
            give_backs: counter(GIVE_BACKS, &[]),
            jobs: JobState::ALL.map(|s| gauge(JOBS, &[("state", s.as_str())])),
            finished: JobOutcome::ALL.map(|o| counter(JOBS_FINISHED, &[("outcome", o.as_str())])),
            duration: histogram(JOB_DURATION, &[]),
            outstanding_tasks: [READY, DISPATCHED].map(|l| gauge(OUTSTANDING_TASKS, &[l])),
            outstanding_cost: [READY, DISPATCHED].map(|l| gauge(OUTSTANDING_COST, &[l])),
            window: gauge(DISPATCH_WINDOW, &[]),
        }
    }
}

static METERS: Lazy<Meters> = Lazy::new(Meters::register);

/// Per-job outstanding work and its sum.
#[derive(Default)]
struct Ledger {
    jobs: HashMap<String, Outstanding>,
    total: Outstanding,
}

static OUTSTANDING: Mutex<Option<Ledger>> = Mutex::new(None);

/// Export every leader series (at zero until something happens).
pub fn register() {
    let _ = METERS.get();
}

/// A task attempt's final result reached the leader; `run` is the run time its worker
/// reported (`None` if unknown, e.g. a cancelled attempt).
#[inline]
pub fn task_finished(kind: Kind, outcome: TaskOutcome, run: Option<Duration>) {
    if let Some(m) = METERS.get() {
        m.tasks[kind as usize][outcome as usize].increment(1);
        if let Some(run) = run {
            m.run[kind as usize].record(run.as_secs_f64());
        }
    }
}

/// A worker started a task `queue_wait` after the leader dispatched it (the leader
/// learns it from the first heartbeat or the result: dispatch-to-result minus the run
/// time the worker reports).
#[inline]
pub fn task_started(kind: Kind, queue_wait: Duration) {
    if let Some(m) = METERS.get() {
        m.wait[kind as usize].record(queue_wait.as_secs_f64());
    }
}

/// A task was dispatched again after a failed attempt.
pub fn task_retried() {
    if let Some(m) = METERS.get() {
        m.retries.increment(1);
    }
}

/// A task was dispatched again without a failure.
pub fn task_redispatched(reason: Redispatch) {
    if let Some(m) = METERS.get() {
        m.redispatches[reason as usize].increment(1);
    }
}

/// A task was run again to recompute a corrupt or missing artifact.
pub fn task_repaired() {
    if let Some(m) = METERS.get() {
        m.repairs.increment(1);
    }
}

/// A hungry worker's report was answered with a give-back from a holder.
pub fn give_back_directed() {
    if let Some(m) = METERS.get() {
        m.give_backs.increment(1);
    }
}

/// Jobs waiting to start (a service's queue, a batch's blocks not started yet): set by
/// whoever holds them back.
pub fn set_queued_jobs(queued: usize) {
    if let Some(m) = METERS.get() {
        m.jobs[JobState::Queued as usize].set(queued as f64);
    }
}

/// Whether a front end (the job service) counts running jobs itself; see
/// [`set_started_jobs`].
static RUNNING_COUNTED_BY_FRONT_END: AtomicBool = AtomicBool::new(false);

/// Jobs running on this leader: set by the leader as jobs start and end, unless a front
/// end counts them (then this does nothing).
pub fn set_running_jobs(running: usize) {
    if RUNNING_COUNTED_BY_FRONT_END.load(Ordering::Relaxed) {
        return;
    }
    if let Some(m) = METERS.get() {
        m.jobs[JobState::Running as usize].set(running as f64);
    }
}

/// Jobs a front end has started, from the moment it claims one (before its input is
/// read and planned) until its run ends: from the first call on, the front end owns
/// the `running` series, so the gauge never disagrees with what its API says.
pub fn set_started_jobs(running: usize) {
    RUNNING_COUNTED_BY_FRONT_END.store(true, Ordering::Relaxed);
    if let Some(m) = METERS.get() {
        m.jobs[JobState::Running as usize].set(running as f64);
    }
}

/// A job ended after `duration`.
pub fn job_finished(outcome: JobOutcome, duration: Duration) {
    if let Some(m) = METERS.get() {
        m.finished[outcome as usize].increment(1);
        m.duration.record(duration.as_secs_f64());
    }
}

/// Tasks the leader lets be out with the workers at once.
pub fn set_dispatch_window(tasks: usize) {
    if let Some(m) = METERS.get() {
        m.window.set(tasks as f64);
    }
}

/// Set `job`'s outstanding work (replacing what it had); the exported
/// `proofline_outstanding_tasks` / `proofline_outstanding_cost` are the sums over all
/// jobs. Allocates only the first time a job is seen. Call [`forget_job`] when it ends.
pub fn set_job_outstanding(
    job: &str,
    ready_tasks: u64,
    dispatched_tasks: u64,
    ready_cost: u64,
    dispatched_cost: u64,
) {
    let Some(m) = METERS.get() else {
        return;
    };
    let now = Outstanding { ready_tasks, dispatched_tasks, ready_cost, dispatched_cost };
    let mut guard = OUTSTANDING.lock().unwrap_or_else(|p| p.into_inner());
    let ledger = guard.get_or_insert_with(Ledger::default);
    match ledger.jobs.get_mut(job) {
        Some(was) => {
            ledger.total.sub(was);
            *was = now;
        }
        None => {
            ledger.jobs.insert(job.to_owned(), now);
        }
    }
    ledger.total.add(&now);
    publish(m, &ledger.total);
}

/// `job` ended: its outstanding work leaves the sums.
pub fn forget_job(job: &str) {
    let Some(m) = METERS.get() else {
        return;
    };
    let mut guard = OUTSTANDING.lock().unwrap_or_else(|p| p.into_inner());
    let ledger = guard.get_or_insert_with(Ledger::default);
    if let Some(was) = ledger.jobs.remove(job) {
        ledger.total.sub(&was);
        publish(m, &ledger.total);
    }
}

/// The outstanding work summed over all jobs (what the gauges show).
pub fn outstanding() -> Outstanding {
    OUTSTANDING.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.total).unwrap_or_default()
}

fn publish(m: &Meters, total: &Outstanding) {
    m.outstanding_tasks[0].set(total.ready_tasks as f64);
    m.outstanding_tasks[1].set(total.dispatched_tasks as f64);
    m.outstanding_cost[0].set(total.ready_cost as f64);
    m.outstanding_cost[1].set(total.dispatched_cost as f64);
}
