//! Lanes: dedicated threads that run tasks, each with its own deque.
//!
//! The worker actor pushes deliveries into a lane's deque. A lane takes from its own
//! deque first; when that is empty it steals the oldest task queued on a sibling.
//! Heavy work therefore never runs on the async runtime, and one slow task cannot
//! strand the tasks queued behind it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use crossbeam_deque::{Injector, Steal};
use ractor::ActorRef;

use super::WorkerMsg;
use super::exec::run_task;
use crate::plugin::{ExecCx, LaneDevice, PluginRegistry};
use crate::store::ArtifactStore;
use crate::task::{Outcome, Task, TaskResult};
use crate::transport::{Delivery, Settle};

/// How long an idle lane sleeps before looking for work to steal again.
const IDLE_PARK: Duration = Duration::from_millis(2);
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
    /// Tells the running plugin to give up.
    pub cancel: Arc<AtomicBool>,
    /// The task running now (for heartbeats and job cancellation).
    pub current: Mutex<Option<Task>>,
    pub thread: Mutex<Option<Thread>>,
    pub executed: AtomicU64,
    pub stolen: AtomicU64,
    pub busy_micros: AtomicU64,
}

impl LaneSlot {
    pub fn current(&self) -> Option<Task> {
        self.current.lock().expect("lane current lock").clone()
    }

    pub fn is_idle(&self) -> bool {
        self.current.lock().expect("lane current lock").is_none()
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
    /// Jobs whose tasks are skipped (acked unrun): their leader gave up on them.
    pub cancelled_jobs: Arc<RwLock<HashSet<String>>>,
}

/// Tasks finished by the lanes, waiting for the actor to send their results.
/// Lanes append; the actor drains everything at once, so a burst of short tasks
/// costs one actor message, not one per task.
#[derive(Default)]
pub(crate) struct Finished {
    queue: std::sync::Mutex<Vec<(Delivery, TaskResult)>>,
}

impl Finished {
    /// Append; true if the queue was empty (the actor must be told).
    fn push(&self, delivery: Delivery, result: TaskResult) -> bool {
        let mut queue = self.queue.lock().expect("finished queue lock");
        queue.push((delivery, result));
        queue.len() == 1
    }

    pub fn drain(&self) -> Vec<(Delivery, TaskResult)> {
        std::mem::take(&mut *self.queue.lock().expect("finished queue lock"))
    }
}

impl LaneCtx {
    fn slot(&self) -> &LaneSlot {
        &self.slots[self.index]
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
    loop {
        if slot.stop.load(Ordering::Acquire) {
            return true;
        }
        let Some(delivery) = ctx.find_work().or_else(|| spin_for_work(ctx)) else {
            thread::park_timeout(IDLE_PARK);
            continue;
        };
        if ctx.is_cancelled(&delivery.task.job) {
            delivery.settle(Settle::Ack);
            continue;
        }
        *slot.current.lock().expect("lane current lock") = Some(delivery.task.clone());
        if !slot.kill.load(Ordering::Acquire) {
            slot.cancel.store(false, Ordering::Release);
        }
        let task = &delivery.task;
        let mut cx = ExecCx::new(task.id.clone(), ctx.index, slot.cancel.clone()).on(ctx.device);
        let started = Instant::now();
        let outcome = run_task(&ctx.plugins, ctx.store.as_ref(), task, &mut cx);
        let micros = started.elapsed().as_micros() as u64;
        *slot.current.lock().expect("lane current lock") = None;
        if slot.kill.load(Ordering::Acquire) {
            // Die holding the delivery: dropping it unsettled hands it back to the broker.
            tracing::warn!(lane = ctx.index, task = %task.id, "lane killed mid-task; task requeued");
            return false;
        }
        let abandoned = slot.cancel.load(Ordering::Acquire) && matches!(outcome, Outcome::Failed { .. });
        if abandoned && slot.stop.load(Ordering::Acquire) {
            // Shutdown cut the task short: give it back for another worker to run.
            delivery.settle(Settle::Requeue);
            return true;
        }
        if ctx.is_cancelled(&task.job) {
            delivery.settle(Settle::Ack);
            continue;
        }
        slot.executed.fetch_add(1, Ordering::Relaxed);
        slot.busy_micros.fetch_add(micros, Ordering::Relaxed);
        let result = TaskResult {
            job: task.job.clone(),
            task: task.id.clone(),
            attempt: task.attempt,
            start: task.start,
            end: task.end,
            outcome,
            ran_on: format!("{}/{}", ctx.worker_name, ctx.index),
            exec_micros: micros,
        };
        if ctx.finished.push(delivery, result) && ctx.actor.cast(WorkerMsg::Finished).is_err() {
            return true; // the worker is gone: its deliveries are requeued on drop
        }
    }
}

impl LaneCtx {
    fn is_cancelled(&self, job: &str) -> bool {
        self.cancelled_jobs.read().expect("cancelled jobs lock").contains(job)
    }
}
