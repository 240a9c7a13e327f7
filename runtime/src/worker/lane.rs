//! Lanes: dedicated threads that run tasks, each with its own deque.
//!
//! The worker actor pushes deliveries into a lane's deque. A lane takes from its own
//! deque first; when that is empty it steals the oldest task queued on a sibling.
//! Heavy work therefore never runs on the async runtime, and one slow task cannot
//! strand the tasks queued behind it.
//!
//! # Stopping a task
//! Every task runs with its own cancel token, created when the lane takes it and kept
//! with it in [`LaneSlot::current`]; whoever cancels does so under that lock, so a
//! cancellation meant for one task can never reach the next one on the lane.
//!
//! 1. **Job run cancelled** ([`Control::CancelJob`](crate::task::Control)): its runs'
//!    key `(job, run)` is remembered, queued tasks of it are acked unrun, and a running
//!    one is cancelled and acked without a result. A resumed job is a new run: it runs.
//! 2. **Attempt abandoned** (`AbandonTask`, past its timeout): only that attempt is
//!    cancelled; its (stale) failure is reported and acked.
//! 3. **Stop** (the worker drains): the lane finishes its task, then its thread ends.
//!    After the grace period `Abandon` cancels the running task too; a task cut short
//!    that way is requeued for another worker, never acked.
//! 4. **Kill** (chaos tests): the thread dies holding its delivery, which the broker
//!    then redelivers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use ractor::ActorRef;

use super::WorkerMsg;
use super::exec::run_task;
use super::linger::LOW_WATER_PER_LANE;
use crate::metrics::worker::{self as meter, DeadLetter};
use crate::metrics::{Device, TaskOutcome};
use crate::plugin::{ExecCx, LaneDevice, PluginRegistry};
use crate::store::ArtifactStore;
use crate::task::{Outcome, Task, TaskResult};
use crate::transport::{Delivery, Settle};

/// How long an idle lane sleeps before looking again unwoken. Every push into a deque,
/// and every stop, wakes all the worker's lanes (the owner and any sibling that may
/// steal), so this is only a safety net: at 2 ms, 100-200 idle one-lane workers spent a
/// core on waking up to find nothing (`proofline-bench scale`, CPU per thread).
const IDLE_PARK: Duration = Duration::from_millis(100);
/// Yields before an idle lane parks.
const SPINS_BEFORE_PARK: usize = 16;

/// The part of a lane that outlives its thread: the deque, flags and counters.
#[derive(Default)]
pub(crate) struct LaneSlot {
    pub deque: Injector<Delivery>,
    /// Set to stop the thread after its current task (shutdown).
    pub stop: AtomicBool,
    /// Set to make the thread die abandoning its current task (chaos, tests).
    pub kill: AtomicBool,
    /// The task running now (for heartbeats and cancellation).
    pub current: Mutex<Option<Running>>,
    pub thread: Mutex<Option<Thread>>,
    pub executed: AtomicU64,
    pub stolen: AtomicU64,
    pub busy_micros: AtomicU64,
}

/// A task on a lane, with its own cancel token. The task is shared with the lane (it
/// is moved out of its delivery while it runs, and back), not copied per task.
#[derive(Clone)]
pub(crate) struct Running {
    pub task: Arc<Task>,
    pub cancel: Arc<AtomicBool>,
    pub since: Instant,
}

impl LaneSlot {
    pub fn current(&self) -> Option<Running> {
        self.current.lock().expect("lane current lock").clone()
    }

    pub fn is_idle(&self) -> bool {
        self.current.lock().expect("lane current lock").is_none()
    }

    /// Cancel the running task if `which` says so; true if it did.
    pub fn cancel_if(&self, which: impl Fn(&Task) -> bool) -> bool {
        let current = self.current.lock().expect("lane current lock");
        match current.as_ref() {
            Some(running) if which(running.task.as_ref()) => {
                running.cancel.store(true, Ordering::Release);
                true
            }
            _ => false,
        }
    }

    pub fn wake(&self) {
        if let Some(t) = self.thread.lock().expect("lane thread lock").as_ref() {
            t.unpark();
        }
    }
}

/// Everything a lane thread needs.
#[derive(Clone)]
pub(crate) struct LaneCtx {
    pub index: usize,
    pub device: LaneDevice,
    pub slots: Arc<Vec<Arc<LaneSlot>>>,
    pub steal: bool,
    pub worker_name: String,
    pub plugins: PluginRegistry,
    pub store: Arc<dyn ArtifactStore>,
    pub actor: ActorRef<WorkerMsg>,
    pub finished: Arc<Finished>,
    /// Job runs whose tasks are skipped (acked unrun): their leader ended them.
    pub cancelled: Arc<RwLock<CancelledRuns>>,
}

/// The most recent cancelled job runs, bounded: the oldest are forgotten first.
/// Keyed by run number (random per run), checked against the job id too.
#[derive(Default)]
pub(crate) struct CancelledRuns {
    runs: HashMap<u64, String>,
    order: VecDeque<u64>,
}

impl CancelledRuns {
    const CAPACITY: usize = 10_000;

    pub fn insert(&mut self, job: String, run: u64) {
        if self.runs.insert(run, job).is_none() {
            self.order.push_back(run);
        }
        while self.order.len() > Self::CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.runs.remove(&old);
            }
        }
    }

    /// Whether `task`'s run was cancelled (no allocation: this runs once per task).
    pub fn contains(&self, task: &Task) -> bool {
        self.runs.get(&task.run).is_some_and(|job| *job == task.job)
    }
}

/// Tasks finished by the lanes, waiting for the actor to send their results.
/// Lanes append; the actor drains everything at once, so a burst of short tasks
/// costs one actor message, not one per task.
#[derive(Default)]
pub(crate) struct Finished {
    queue: std::sync::Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    results: Vec<(Delivery, TaskResult)>,
    /// When the first of `results` was appended.
    since: Option<Instant>,
}

impl Finished {
    /// Append; true if the queue was empty (the actor must be told).
    fn push(&self, delivery: Delivery, result: TaskResult) -> bool {
        let mut queue = self.queue.lock().expect("finished queue lock");
        queue.results.push((delivery, result));
        queue.since.get_or_insert_with(Instant::now);
        queue.results.len() == 1
    }

    /// Results waiting to be sent.
    pub fn len(&self) -> usize {
        self.queue.lock().expect("finished queue lock").results.len()
    }

    /// Results waiting, and how long the first of them has waited.
    pub fn waiting(&self) -> (usize, Duration) {
        let queue = self.queue.lock().expect("finished queue lock");
        (queue.results.len(), queue.since.map_or(Duration::ZERO, |since| since.elapsed()))
    }

    pub fn drain(&self) -> Vec<(Delivery, TaskResult)> {
        std::mem::take(&mut *self.queue.lock().expect("finished queue lock")).results
    }
}

impl LaneCtx {
    fn slot(&self) -> &LaneSlot {
        &self.slots[self.index]
    }

    /// Unstarted tasks on every lane of this worker.
    pub(crate) fn queued(&self) -> usize {
        self.slots.iter().map(|s| s.deque.len()).sum()
    }

    /// Own deque first, then the siblings', starting after ourselves.
    fn find_work(&self) -> Option<Delivery> {
        if let Some(d) = take(&self.slot().deque) {
            return Some(d);
        }
        if !self.steal {
            return None;
        }
        let n = self.slots.len();
        (1..n).map(|k| (self.index + k) % n).find_map(|victim| {
            let d = take(&self.slots[victim].deque)?;
            self.slot().stolen.fetch_add(1, Ordering::Relaxed);
            Some(d)
        })
    }
}

fn take(deque: &Injector<Delivery>) -> Option<Delivery> {
    loop {
        match deque.steal() {
            Steal::Success(d) => return Some(d),
            Steal::Empty => return None,
            Steal::Retry => continue,
        }
    }
}

/// Before sleeping, look again a few times: the next task is often a moment away
/// (an aggregation waiting on the result just sent), and a park/unpark costs syscalls.
fn spin_for_work(ctx: &LaneCtx) -> Option<Delivery> {
    for _ in 0..SPINS_BEFORE_PARK {
        thread::yield_now();
        if let Some(d) = ctx.find_work() {
            return Some(d);
        }
    }
    None
}

/// Tells the worker when a lane thread ends for any reason other than a clean stop.
struct DeathNotice<'a> {
    ctx: &'a LaneCtx,
    clean: bool,
}

impl Drop for DeathNotice<'_> {
    fn drop(&mut self) {
        if !self.clean {
            let _ = self.ctx.actor.cast(WorkerMsg::LaneDied { lane: self.ctx.index });
        }
    }
}

pub(crate) fn spawn_lane(ctx: LaneCtx) -> std::io::Result<JoinHandle<()>> {
    let name = format!("lane-{}", ctx.index);
    thread::Builder::new().name(name).spawn(move || {
        *ctx.slot().thread.lock().expect("lane thread lock") = Some(thread::current());
        let mut notice = DeathNotice { ctx: &ctx, clean: false };
        if lane_loop(&ctx) {
            notice.clean = true;
        }
    })
}

/// Returns true on a clean stop, false when the lane was killed.
fn lane_loop(ctx: &LaneCtx) -> bool {
    let slot = ctx.slot();
    let ran_on = format!("{}/{}", ctx.worker_name, ctx.index);
    loop {
        if slot.stop.load(Ordering::Acquire) {
            return true;
        }
        let Some(delivery) = ctx.find_work().or_else(|| spin_for_work(ctx)) else {
            thread::park_timeout(IDLE_PARK);
            continue;
        };
        if let Err(why) = check_task(&delivery.task) {
            // Never run or answer a task whose fields could point anywhere.
            tracing::warn!(task = %delivery.task.id, job = %delivery.task.job, "{why}; dead-lettering it");
            meter::dead_lettered(DeadLetter::Malformed);
            delivery.settle(Settle::DeadLetter);
            continue;
        }
        if ctx.is_cancelled(&delivery.task) {
            meter::task_finished(delivery.task.kind, TaskOutcome::Cancelled, None);
            delivery.settle(Settle::Ack);
            continue;
        }
        let cancel = Arc::new(AtomicBool::new(slot.kill.load(Ordering::Acquire)));
        let mut delivery = delivery;
        let shared = Arc::new(std::mem::replace(&mut delivery.task, placeholder()));
        let started = Instant::now();
        let running = Running { task: shared.clone(), cancel: cancel.clone(), since: started };
        *slot.current.lock().expect("lane current lock") = Some(running);
        let mut cx = ExecCx::new(shared.id.clone(), ctx.index, cancel.clone()).on(ctx.device);
        meter::task_started(shared.kind, started.saturating_duration_since(delivery.received));
        let outcome = run_task(&ctx.plugins, ctx.store.as_ref(), &shared, &mut cx);
        let elapsed = started.elapsed();
        let micros = elapsed.as_micros() as u64;
        meter::lane_busy(Device::from(ctx.device), elapsed);
        *slot.current.lock().expect("lane current lock") = None;
        // Back into the delivery (a heartbeat that still holds a copy makes us clone).
        delivery.task = Arc::try_unwrap(shared).unwrap_or_else(|shared| (*shared).clone());
        let task = &delivery.task;
        if slot.kill.load(Ordering::Acquire) {
            // Die holding the delivery: dropping it unsettled hands it back to the broker.
            tracing::warn!(lane = ctx.index, task = %task.id, "lane killed mid-task; task requeued");
            return false;
        }
        let abandoned = cancel.load(Ordering::Acquire) && matches!(outcome, Outcome::Failed { .. });
        if abandoned && slot.stop.load(Ordering::Acquire) {
            // Shutdown cut the task short: give it back for another worker to run.
            meter::task_finished(task.kind, TaskOutcome::Cancelled, Some(elapsed));
            delivery.settle(Settle::Requeue);
            return true;
        }
        if ctx.is_cancelled(task) {
            meter::task_finished(task.kind, TaskOutcome::Cancelled, Some(elapsed));
            delivery.settle(Settle::Ack);
            continue;
        }
        let label = if abandoned { Some(TaskOutcome::Cancelled) } else { TaskOutcome::of(&outcome) };
        meter::task_finished(task.kind, label.unwrap_or(TaskOutcome::Failed), Some(elapsed));
        slot.executed.fetch_add(1, Ordering::Relaxed);
        slot.busy_micros.fetch_add(micros, Ordering::Relaxed);
        let mut result = TaskResult::of(&placeholder(), outcome, ran_on.clone(), micros);
        // The result takes the task's names; the delivery keeps what the worker actor
        // still reads (reply queue, attempts), and the broker needs none of them.
        (result.job, result.task) =
            (std::mem::take(&mut delivery.task.job), std::mem::take(&mut delivery.task.id));
        (result.attempt, result.start, result.end) =
            (delivery.task.attempt, delivery.task.start, delivery.task.end);
        // Tell the actor of the first result waiting, and whenever the lanes run low
        // (held results may be due: `worker::linger`, rule 1).
        let first = ctx.finished.push(delivery, result);
        if (first || ctx.queued() < LOW_WATER_PER_LANE * ctx.slots.len())
            && ctx.actor.cast(WorkerMsg::Finished).is_err()
        {
            return true; // the worker is gone: its deliveries are requeued on drop
        }
    }
}

/// What a delivery holds while its task is out on the lane: no allocation.
fn placeholder() -> Task {
    Task {
        job: String::new(),
        run: 0,
        id: String::new(),
        kind: crate::task::TaskKind::Segment,
        plugin: String::new(),
        inputs: Vec::new(),
        start: 0,
        end: 0,
        attempt: 0,
        max_attempts: 0,
        deadline_ms: 0,
        cost: 0,
        reply_to: String::new(),
    }
}

impl LaneCtx {
    fn is_cancelled(&self, task: &Task) -> bool {
        self.cancelled.read().expect("cancelled runs lock").contains(task)
    }
}

/// A task from the network may name a store key, a queue and a range: refuse any
/// that this runtime could not have made.
fn check_task(task: &Task) -> Result<(), String> {
    use crate::task::{RESULTS_QUEUE_PREFIX, TaskKind, is_job_id};
    if !is_job_id(&task.job) {
        return Err(format!("malformed job id {:?}", task.job));
    }
    // Parsed rather than formatted and compared: no allocation on the per-task path.
    let number = |s: &str| s.parse::<u32>().ok().filter(|n| s == "0" || !s.starts_with('0') && *n > 0);
    let names_its_range =
        match task.kind {
            TaskKind::Segment => {
                task.start.checked_add(1) == Some(task.end)
                    && task.id.strip_prefix("seg-").and_then(number) == Some(task.start)
            }
            TaskKind::Aggregate => {
                task.start.checked_add(1).is_some_and(|next| task.end > next)
                    && task.id.strip_prefix("agg-").and_then(|r| r.split_once('-')).is_some_and(|(a, b)| {
                        number(a) == Some(task.start) && number(b) == Some(task.end - 1)
                    })
            }
        };
    if !names_its_range {
        return Err(format!("task id {:?} does not name its range {}..{}", task.id, task.start, task.end));
    }
    if !task.reply_to.starts_with(RESULTS_QUEUE_PREFIX) || task.reply_to.len() > 255 {
        return Err(format!("reply_to {:?} is not a result queue", task.reply_to));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskKind;

    fn task(job: &str, id: &str, range: (u32, u32), reply_to: &str) -> Task {
        let kind = if id.starts_with("seg-") { TaskKind::Segment } else { TaskKind::Aggregate };
        Task {
            job: job.into(),
            run: 1,
            id: id.into(),
            kind,
            plugin: "sim@1".into(),
            inputs: vec![],
            start: range.0,
            end: range.1,
            attempt: 1,
            max_attempts: 3,
            deadline_ms: 1,
            cost: 1,
            reply_to: reply_to.into(),
        }
    }

    #[test]
    fn tasks_from_the_network_are_checked_before_anything_runs() {
        let ok = "proofline.results.leader-1";
        assert!(check_task(&task("job-1-abcdef12", "seg-3", (3, 4), ok)).is_ok());
        assert!(check_task(&task("job-1-abcdef12", "agg-0-3", (0, 4), ok)).is_ok());
        for bad in [
            task("../etc", "seg-3", (3, 4), ok),
            task("job-1-abcdef12", "seg-3/../../x", (3, 4), ok),
            task("job-1-abcdef12", "seg-4", (3, 4), ok),
            task("job-1-abcdef12", "agg-0-3", (0, 9), ok),
            task("job-1-abcdef12", "seg-3", (3, 4), "amq.rabbitmq.trace"),
            task("job-1-abcdef12", "seg-4294967295", (u32::MAX, 0), ok),
            task("job-1-abcdef12", "seg-03", (3, 4), ok),
            task("job-1-abcdef12", "agg-0-03", (0, 4), ok),
        ] {
            assert!(check_task(&bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn cancelled_runs_are_keyed_by_run_and_bounded() {
        let mut runs = CancelledRuns::default();
        runs.insert("job-1-abcdef12".into(), 1);
        assert!(runs.contains(&task("job-1-abcdef12", "seg-0", (0, 1), "r")));
        let mut resumed = task("job-1-abcdef12", "seg-0", (0, 1), "r");
        resumed.run = 2;
        assert!(!runs.contains(&resumed), "a resumed run is not the cancelled one");
        for i in 0..CancelledRuns::CAPACITY as u64 {
            runs.insert(format!("job-{i}"), i);
        }
        assert_eq!(runs.order.len(), CancelledRuns::CAPACITY);
        assert!(!runs.contains(&task("job-1-abcdef12", "seg-0", (0, 1), "r")), "the oldest is forgotten");
    }
}
