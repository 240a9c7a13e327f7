//! Prometheus metrics: the one place that names them, installs the recorder and renders
//! the text exposition.
//!
//! Built on the [`metrics`] facade with `metrics-exporter-prometheus`'s recorder (no
//! HTTP listener of its own: the binaries serve [`render`] at `GET /metrics`, with
//! [`CONTENT_TYPE`]). Every metric is listed in [`METRICS`]; code records through the
//! typed functions of [`worker`], [`leader`] and [`store`] and [`broker_reconnected`],
//! never with metric-name strings.
//!
//! ```
//! use proofline_runtime::metrics;
//! metrics::install().unwrap(); // once per process; later calls do nothing
//! metrics::leader::set_dispatch_window(64);
//! assert!(metrics::render().contains("proofline_dispatch_window 64"));
//! ```
//!
//! # Cost on the hot path
//!
//! Each group of series (the worker's, the leader's, one store's) is registered once,
//! on its first use after [`install`], into a table of handles indexed by the label
//! enums: recording a task is then an array index and an atomic add, with no name
//! lookup, no string formatting and no allocation. Before [`install`] (unit tests,
//! embedders that do not export metrics) every function returns at once. Registering
//! a group up front also exports its series at zero from the start, so `rate()` and
//! the dashboard see them before the first event.
//!
//! Label values are small closed enums (kind, outcome, device, op, store, state,
//! reason, role): never a job id, a task id, a host or a URI, so the number of series
//! is fixed and no secret can reach `/metrics`.

pub mod leader;
mod spec;
pub mod store;
pub mod worker;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub use spec::{Exporter, METRICS, MetricSpec, MetricType, metric_of_series, spec_of};

use crate::plugin::LaneDevice;
use crate::task::{Outcome, TaskKind};

/// `Content-Type` of [`render`]'s text (the Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Default buckets of `_seconds` histograms (task run times): 0.5 ms to 1 h, denser
/// from 0.5 s to 3 min where proving tasks take their time.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1800.0, 3600.0,
];
/// Buckets of queue waits: 0.1 ms (a lane was idle) to 30 min (a deep backlog).
pub const QUEUE_WAIT_BUCKETS: &[f64] = &[
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0,
    1800.0,
];
/// Buckets of store operations: 0.1 ms (a cached or local read) to 30 s (a slow S3 put).
pub const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0,
];
/// Buckets of job durations: 1 s to 1 day.
pub const JOB_BUCKETS: &[f64] = &[
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0,
    86400.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes
/// (bounds the memory they hold between scrapes).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("invalid histogram buckets for {metric}: {reason}")]
    Buckets { metric: &'static str, reason: String },
    #[error("another metrics recorder is already installed in this process: {0}")]
    OtherRecorder(String),
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static INSTALLING: Mutex<()> = Mutex::new(());

/// Install the Prometheus recorder for this process. Idempotent: the first call
/// installs it, later calls return `Ok` at once. Fails only if some other recorder was
/// installed first.
pub fn install() -> Result<(), MetricsError> {
    let _guard = INSTALLING.lock().unwrap_or_else(|p| p.into_inner());
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let bucket_error = |metric: &'static str| {
        move |e: metrics_exporter_prometheus::BuildError| MetricsError::Buckets {
            metric,
            reason: e.to_string(),
        }
    };
    let mut builder = PrometheusBuilder::new().set_buckets(SECONDS_BUCKETS).map_err(bucket_error("*"))?;
    for m in METRICS.iter().filter(|m| m.kind == MetricType::Histogram) {
        let buckets = match m.name {
            spec::STORE_OPERATION => STORE_BUCKETS,
            spec::JOB_DURATION => JOB_BUCKETS,
            spec::TASK_QUEUE_WAIT | spec::WORKER_TASK_QUEUE_WAIT => QUEUE_WAIT_BUCKETS,
            _ => SECONDS_BUCKETS,
        };
        builder = builder
            .set_buckets_for_metric(Matcher::Full(m.name.to_owned()), buckets)
            .map_err(bucket_error(m.name))?;
    }
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).map_err(|e| MetricsError::OtherRecorder(e.to_string()))?;
    for m in METRICS {
        let (name, help) = (metrics::KeyName::from_const_str(m.name), m.help.into());
        metrics::with_recorder(|r| match m.kind {
            MetricType::Counter => r.describe_counter(name, None, help),
            MetricType::Gauge => r.describe_gauge(name, None, help),
            MetricType::Histogram => r.describe_histogram(name, None, help),
        });
    }
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            upkeep.run_upkeep();
        }
    });
    if let Err(e) = spawned {
        // Scrapes drain the histograms too; without scrapes they hold their samples.
        tracing::warn!(error = %e, "metrics upkeep thread not started");
    }
    let _ = HANDLE.set(handle);
    Ok(())
}

/// Whether [`install`] has run in this process.
pub fn is_installed() -> bool {
    HANDLE.get().is_some()
}

/// The Prometheus text exposition of every series recorded so far; empty (a valid,
/// empty exposition) before [`install`].
///
/// ```
/// // Nothing is installed in this process: nothing is recorded, nothing rendered.
/// proofline_runtime::metrics::worker::set_tasks_held(3);
/// assert_eq!(proofline_runtime::metrics::render(), "");
/// ```
pub fn render() -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    let mut text = handle.render();
    worker::render_lane_busy(&mut text);
    text
}

/// A table of metric handles, registered on first use after [`install`].
pub(crate) struct Lazy<T: 'static> {
    cell: OnceLock<T>,
    register: fn() -> T,
}

impl<T> Lazy<T> {
    pub(crate) const fn new(register: fn() -> T) -> Self {
        Self { cell: OnceLock::new(), register }
    }

    /// The handles, or `None` before [`install`].
    #[inline]
    pub(crate) fn get(&'static self) -> Option<&'static T> {
        if let Some(t) = self.cell.get() {
            return Some(t);
        }
        HANDLE.get()?;
        Some(self.cell.get_or_init(self.register))
    }
}

fn labels(pairs: &[(&'static str, &'static str)]) -> Vec<metrics::Label> {
    pairs.iter().map(|&(k, v)| metrics::Label::from_static_parts(k, v)).collect()
}

/// Register (and so export at zero) a counter.
pub(crate) fn counter(name: &'static str, pairs: &[(&'static str, &'static str)]) -> metrics::Counter {
    let counter = metrics::counter!(name, labels(pairs));
    counter.increment(0);
    counter
}

/// Register (and so export at zero) a gauge.
pub(crate) fn gauge(name: &'static str, pairs: &[(&'static str, &'static str)]) -> metrics::Gauge {
    let gauge = metrics::gauge!(name, labels(pairs));
    gauge.increment(0.0);
    gauge
}

/// Register a histogram (exported from its first sample on).
pub(crate) fn histogram(name: &'static str, pairs: &[(&'static str, &'static str)]) -> metrics::Histogram {
    metrics::histogram!(name, labels(pairs))
}

/// The `kind` label: what a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Segment = 0,
    Aggregate = 1,
    /// The final wrap (run by the leader).
    Wrap = 2,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Segment, Kind::Aggregate, Kind::Wrap];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Segment => "segment",
            Self::Aggregate => "aggregate",
            Self::Wrap => "wrap",
        }
    }
}

impl From<TaskKind> for Kind {
    fn from(kind: TaskKind) -> Self {
        match kind {
            TaskKind::Segment => Self::Segment,
            TaskKind::Aggregate => Self::Aggregate,
        }
    }
}

/// The `outcome` label of a task attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskOutcome {
    Done = 0,
    /// A permanent failure.
    Failed = 1,
    /// A failure worth another attempt.
    Retryable = 2,
    /// Dropped unrun or cut short: its job run was cancelled, or the attempt abandoned.
    Cancelled = 3,
    /// An input failed its BLAKE3 check or was missing.
    CorruptInput = 4,
}

impl TaskOutcome {
    pub const ALL: [TaskOutcome; 5] = [
        TaskOutcome::Done,
        TaskOutcome::Failed,
        TaskOutcome::Retryable,
        TaskOutcome::Cancelled,
        TaskOutcome::CorruptInput,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Retryable => "retryable",
            Self::Cancelled => "cancelled",
            Self::CorruptInput => "corrupt_input",
        }
    }

    /// The label of a final outcome; `None` for a heartbeat ([`Outcome::Running`]).
    pub fn of(outcome: &Outcome) -> Option<Self> {
        match outcome {
            Outcome::Done(_) => Some(Self::Done),
            Outcome::Failed { retryable: true, .. } => Some(Self::Retryable),
            Outcome::Failed { retryable: false, .. } => Some(Self::Failed),
            Outcome::CorruptInput { .. } => Some(Self::CorruptInput),
            Outcome::Running => None,
        }
    }
}

/// The `device` label of a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu = 0,
    Gpu = 1,
}

impl Device {
    pub const ALL: [Device; 2] = [Device::Cpu, Device::Gpu];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Gpu => "gpu",
        }
    }
}

impl From<LaneDevice> for Device {
    fn from(device: LaneDevice) -> Self {
        match device {
            LaneDevice::Cpu => Self::Cpu,
            LaneDevice::Gpu(_) => Self::Gpu,
        }
    }
}

/// The `role` label of a broker connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerRole {
    Leader = 0,
    Worker = 1,
}

impl BrokerRole {
    pub const ALL: [BrokerRole; 2] = [BrokerRole::Leader, BrokerRole::Worker];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Worker => "worker",
        }
    }
}

static BROKER: Lazy<[metrics::Counter; 2]> =
    Lazy::new(|| BrokerRole::ALL.map(|r| counter(spec::BROKER_RECONNECTS, &[("role", r.as_str())])));

/// A lost AMQP connection was re-established.
pub fn broker_reconnected(role: BrokerRole) {
    if let Some(m) = BROKER.get() {
        m[role as usize].increment(1);
    }
}

/// Export the reconnect counter at zero (called when a broker connection opens).
pub fn broker_connected() {
    let _ = BROKER.get();
}

#[cfg(test)]
mod tests;
