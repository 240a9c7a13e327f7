//! Worker-side metrics: tasks by outcome, run and queue-wait times, lane busy time and
//! lanes by device, tasks held, dead letters.
//!
//! Lane busy time is a float counter of seconds, which the facade's integer counters
//! cannot hold: it is kept as atomic microseconds per device and appended to
//! [`render`](super::render)'s text by [`render_lane_busy`], once [`set_lanes`] ran.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};

use super::spec::{
    METRICS, WORKER_DEAD_LETTERS, WORKER_LANE_BUSY, WORKER_LANES, WORKER_TASK_QUEUE_WAIT, WORKER_TASK_RUN,
    WORKER_TASKS, WORKER_TASKS_HELD,
};
use super::{Device, Kind, Lazy, TaskOutcome, counter, gauge, histogram};
use crate::task::TaskKind;

/// The `reason` label of a dead letter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadLetter {
    /// The last allowed attempt failed, or the failure was permanent.
    Failed = 0,
    /// A task whose ids, range or reply queue this runtime could not have made.
    Malformed = 1,
    /// A message that is not a valid task envelope.
    Undecodable = 2,
}

impl DeadLetter {
    pub const ALL: [DeadLetter; 3] = [DeadLetter::Failed, DeadLetter::Malformed, DeadLetter::Undecodable];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Malformed => "malformed",
            Self::Undecodable => "undecodable",
        }
    }
}

/// The kinds a worker runs (wrap runs on the leader).
const WORKER_KINDS: [Kind; 2] = [Kind::Segment, Kind::Aggregate];

struct Meters {
    tasks: [[Counter; 5]; 2],
    run: [Histogram; 2],
    wait: [Histogram; 2],
    lanes: [Gauge; 2],
    held: Gauge,
    dead: [Counter; 3],
}

impl Meters {
    fn register() -> Self {
        Self {
            tasks: WORKER_KINDS.map(|k| {
                TaskOutcome::ALL
                    .map(|o| counter(WORKER_TASKS, &[("kind", k.as_str()), ("outcome", o.as_str())]))
            }),
            run: WORKER_KINDS.map(|k| histogram(WORKER_TASK_RUN, &[("kind", k.as_str())])),
            wait: WORKER_KINDS.map(|k| histogram(WORKER_TASK_QUEUE_WAIT, &[("kind", k.as_str())])),
            lanes: Device::ALL.map(|d| gauge(WORKER_LANES, &[("device", d.as_str())])),
            held: gauge(WORKER_TASKS_HELD, &[]),
            dead: DeadLetter::ALL.map(|r| counter(WORKER_DEAD_LETTERS, &[("reason", r.as_str())])),
        }
    }
}

static METERS: Lazy<Meters> = Lazy::new(Meters::register);

/// Busy microseconds per [`Device`].
static LANE_BUSY_MICROS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
/// Whether this process runs lanes (then their busy time is exported).
static HAS_LANES: AtomicBool = AtomicBool::new(false);

fn index(kind: TaskKind) -> usize {
    match kind {
        TaskKind::Segment => 0,
        TaskKind::Aggregate => 1,
    }
}

/// A worker with `cpu` CPU lanes and `gpu` GPU lanes started: exports its lane counts
/// and every worker series (at zero until something happens).
pub fn set_lanes(cpu: usize, gpu: usize) {
    if let Some(m) = METERS.get() {
        m.lanes[Device::Cpu as usize].set(cpu as f64);
        m.lanes[Device::Gpu as usize].set(gpu as f64);
        HAS_LANES.store(true, Ordering::Relaxed);
    }
}

/// A lane started a task that waited `queue_wait` on this worker since its receipt.
#[inline]
pub fn task_started(kind: TaskKind, queue_wait: Duration) {
    if let Some(m) = METERS.get() {
        m.wait[index(kind)].record(queue_wait.as_secs_f64());
    }
}

/// A task ended on this worker; `run` is the time its lane spent on it (`None` when
/// it was dropped unrun).
#[inline]
pub fn task_finished(kind: TaskKind, outcome: TaskOutcome, run: Option<Duration>) {
    if let Some(m) = METERS.get() {
        m.tasks[index(kind)][outcome as usize].increment(1);
        if let Some(run) = run {
            m.run[index(kind)].record(run.as_secs_f64());
        }
    }
}

/// A lane on `device` was busy for `busy`.
#[inline]
pub fn lane_busy(device: Device, busy: Duration) {
    let micros = u64::try_from(busy.as_micros()).unwrap_or(u64::MAX);
    LANE_BUSY_MICROS[device as usize].fetch_add(micros, Ordering::Relaxed);
}

/// Tasks this worker holds now (received, not finished).
pub fn set_tasks_held(tasks: usize) {
    if let Some(m) = METERS.get() {
        m.held.set(tasks as f64);
    }
}

/// A delivery was dead-lettered.
pub fn dead_lettered(reason: DeadLetter) {
    if let Some(m) = METERS.get() {
        m.dead[reason as usize].increment(1);
    }
}

/// Append the lane busy counter (seconds, with microsecond precision) to `text`.
pub(super) fn render_lane_busy(text: &mut String) {
    if !HAS_LANES.load(Ordering::Relaxed) {
        return;
    }
    let help = METRICS.iter().find(|m| m.name == WORKER_LANE_BUSY).map_or("", |m| m.help);
    let _ = writeln!(text, "# HELP {WORKER_LANE_BUSY} {help}");
    let _ = writeln!(text, "# TYPE {WORKER_LANE_BUSY} counter");
    for device in Device::ALL {
        let micros = LANE_BUSY_MICROS[device as usize].load(Ordering::Relaxed);
        let _ = writeln!(
            text,
            "{WORKER_LANE_BUSY}{{device=\"{}\"}} {}.{:06}",
            device.as_str(),
            micros / 1_000_000,
            micros % 1_000_000
        );
    }
    text.push('\n');
}
