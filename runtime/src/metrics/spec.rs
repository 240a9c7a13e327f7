//! The table of every metric Proofline exports: names, types, labels, help texts.
//!
//! [`METRICS`] is the single source of truth: [`install`](super::install) describes
//! each entry to the recorder (the `# HELP` lines), `docs/METRICS.md` lists them, and
//! the Grafana dashboard test checks that every panel queries only names found here.
//! The recording functions in [`worker`](super::worker), [`leader`](super::leader) and
//! [`store`](super::store) use the name constants below, never string literals.

/// Prometheus metric type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
}

impl MetricType {
    /// The `# TYPE` word.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// Which process exports a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exporter {
    /// `proofline-leader` (stdio, batch, serve).
    Leader,
    /// `proofline-worker`, and the leader's embedded worker (`--runtime in-memory`).
    Worker,
    /// Both binaries (stores, caches and broker connections exist on both sides).
    Both,
}

/// One exported metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    /// Full Prometheus name, `proofline_` prefixed, unit and `_total` suffixes included.
    pub name: &'static str,
    pub kind: MetricType,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Base unit (`seconds`, `bytes`), or `None` for plain counts.
    pub unit: Option<&'static str>,
    /// Label names (values are bounded enums: no per-job or per-task labels).
    pub labels: &'static [&'static str],
    pub exporter: Exporter,
}

// Worker side.
pub const WORKER_TASKS: &str = "proofline_worker_tasks_total";
pub const WORKER_TASK_RUN: &str = "proofline_worker_task_run_seconds";
pub const WORKER_TASK_QUEUE_WAIT: &str = "proofline_worker_task_queue_wait_seconds";
pub const WORKER_LANE_BUSY: &str = "proofline_worker_lane_busy_seconds_total";
pub const WORKER_LANES: &str = "proofline_worker_lanes";
pub const WORKER_TASKS_HELD: &str = "proofline_worker_tasks_held";
pub const WORKER_DEAD_LETTERS: &str = "proofline_worker_dead_letters_total";
// Both sides.
pub const STORE_OPERATION: &str = "proofline_store_operation_seconds";
pub const STORE_BYTES: &str = "proofline_store_bytes_total";
pub const CACHE_HITS: &str = "proofline_cache_hits_total";
pub const CACHE_MISSES: &str = "proofline_cache_misses_total";
pub const BROKER_RECONNECTS: &str = "proofline_broker_reconnects_total";
// Leader side.
pub const TASKS: &str = "proofline_tasks_total";
pub const TASK_RUN: &str = "proofline_task_run_seconds";
pub const TASK_QUEUE_WAIT: &str = "proofline_task_queue_wait_seconds";
pub const TASK_RETRIES: &str = "proofline_task_retries_total";
pub const TASK_REDISPATCHES: &str = "proofline_task_redispatches_total";
pub const TASK_REPAIRS: &str = "proofline_task_repairs_total";
pub const GIVE_BACKS: &str = "proofline_give_backs_total";
pub const JOBS: &str = "proofline_jobs";
pub const JOBS_FINISHED: &str = "proofline_jobs_finished_total";
pub const JOB_DURATION: &str = "proofline_job_duration_seconds";
pub const OUTSTANDING_TASKS: &str = "proofline_outstanding_tasks";
pub const OUTSTANDING_COST: &str = "proofline_outstanding_cost";
pub const DISPATCH_WINDOW: &str = "proofline_dispatch_window";

const fn spec(
    name: &'static str,
    kind: MetricType,
    unit: Option<&'static str>,
    labels: &'static [&'static str],
    exporter: Exporter,
    help: &'static str,
) -> MetricSpec {
    MetricSpec { name, kind, help, unit, labels, exporter }
}

use Exporter::{Both, Leader, Worker};
use MetricType::{Counter, Gauge, Histogram};

const SECONDS: Option<&str> = Some("seconds");

/// Every metric Proofline exports.
pub const METRICS: &[MetricSpec] = &[
    spec(
        WORKER_TASKS,
        Counter,
        None,
        &["kind", "outcome"],
        Worker,
        "Tasks that ended on this worker, by kind (segment, aggregate) and outcome (done, failed, retryable, cancelled, corrupt_input).",
    ),
    spec(
        WORKER_TASK_RUN,
        Histogram,
        SECONDS,
        &["kind"],
        Worker,
        "Time a lane spent running one task (inputs, plugin, output), by kind.",
    ),
    spec(
        WORKER_TASK_QUEUE_WAIT,
        Histogram,
        SECONDS,
        &["kind"],
        Worker,
        "Time a task waited on this worker between its receipt from the broker and a lane starting it.",
    ),
    spec(
        WORKER_LANE_BUSY,
        Counter,
        SECONDS,
        &["device"],
        Worker,
        "Seconds lanes spent running tasks, by device (cpu, gpu); utilisation = rate of this / proofline_worker_lanes.",
    ),
    spec(WORKER_LANES, Gauge, None, &["device"], Worker, "Lanes of this worker, by device (cpu, gpu)."),
    spec(
        WORKER_TASKS_HELD,
        Gauge,
        None,
        &[],
        Worker,
        "Tasks this worker holds: received from the broker and not yet finished (queued on lanes or running).",
    ),
    spec(
        WORKER_DEAD_LETTERS,
        Counter,
        None,
        &["reason"],
        Worker,
        "Deliveries this worker dead-lettered, by reason (failed: last allowed attempt or permanent failure; malformed: a task this runtime could not have made; undecodable: not a task envelope).",
    ),
    spec(
        STORE_OPERATION,
        Histogram,
        SECONDS,
        &["op", "store"],
        Both,
        "Latency of artifact store operations, by op (get, put, delete, list) and store (fs, s3, mem).",
    ),
    spec(
        STORE_BYTES,
        Counter,
        Some("bytes"),
        &["op", "store"],
        Both,
        "Artifact bytes read (get) and written (put), by store (fs, s3, mem).",
    ),
    spec(
        CACHE_HITS,
        Counter,
        None,
        &[],
        Both,
        "Artifact reads served from the local cache in front of a remote store.",
    ),
    spec(
        CACHE_MISSES,
        Counter,
        None,
        &[],
        Both,
        "Artifact reads the local cache passed on to the remote store.",
    ),
    spec(
        BROKER_RECONNECTS,
        Counter,
        None,
        &["role"],
        Both,
        "Successful reconnections to the AMQP broker after a lost connection, by role (leader, worker).",
    ),
    spec(
        TASKS,
        Counter,
        None,
        &["kind", "outcome"],
        Leader,
        "Task attempts whose result reached the leader, by kind (segment, aggregate, wrap) and outcome (done, failed, retryable, cancelled, corrupt_input).",
    ),
    spec(
        TASK_RUN,
        Histogram,
        SECONDS,
        &["kind"],
        Leader,
        "Run time of task attempts as reported with their results, by kind.",
    ),
    spec(
        TASK_QUEUE_WAIT,
        Histogram,
        SECONDS,
        &["kind"],
        Leader,
        "Time from a task's dispatch by the leader to a worker starting it (first heartbeat or result), by kind.",
    ),
    spec(TASK_RETRIES, Counter, None, &[], Leader, "Tasks dispatched again after a failed attempt."),
    spec(
        TASK_REDISPATCHES,
        Counter,
        None,
        &["reason"],
        Leader,
        "Tasks dispatched again without a failure, by reason (silent: no result nor heartbeat within the deadline; timeout: ran past its timeout).",
    ),
    spec(
        TASK_REPAIRS,
        Counter,
        None,
        &[],
        Leader,
        "Tasks run again to recompute a corrupt or missing artifact.",
    ),
    spec(
        GIVE_BACKS,
        Counter,
        None,
        &[],
        Leader,
        "Give-backs directed at the worker holding the most unstarted tasks, one per hunger report it could answer.",
    ),
    spec(JOBS, Gauge, None, &["state"], Leader, "Jobs on this leader, by state (queued, running)."),
    spec(
        JOBS_FINISHED,
        Counter,
        None,
        &["outcome"],
        Leader,
        "Jobs that ended, by outcome (proven, failed, cancelled).",
    ),
    spec(
        JOB_DURATION,
        Histogram,
        SECONDS,
        &[],
        Leader,
        "Time from a job's start to its end (proven, failed or cancelled).",
    ),
    spec(
        OUTSTANDING_TASKS,
        Gauge,
        None,
        &["state"],
        Leader,
        "Tasks of unfinished jobs not yet done, by state (ready: queued at the leader; dispatched: out with workers). Autoscaler input.",
    ),
    spec(
        OUTSTANDING_COST,
        Gauge,
        None,
        &["state"],
        Leader,
        "Estimated cost (in the plugin's cost unit) of the outstanding tasks, by state (ready, dispatched). Autoscaler input.",
    ),
    spec(
        DISPATCH_WINDOW,
        Gauge,
        None,
        &[],
        Leader,
        "Tasks the leader lets be out with the workers at once, across all jobs.",
    ),
];

/// The entry for `name`, if Proofline exports it.
pub fn spec_of(name: &str) -> Option<&'static MetricSpec> {
    METRICS.iter().find(|m| m.name == name)
}

/// The metric a series name belongs to: the name itself, or for a histogram its
/// `_bucket`, `_sum` and `_count` series.
pub fn metric_of_series(series: &str) -> Option<&'static MetricSpec> {
    spec_of(series).or_else(|| {
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let base = series.strip_suffix(suffix)?;
            spec_of(base).filter(|m| m.kind == MetricType::Histogram)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        let mut seen = std::collections::HashSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} listed twice", m.name);
            assert!(m.name.starts_with("proofline_"), "{}", m.name);
            assert!(m.name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{}", m.name);
            assert_eq!(m.kind == MetricType::Counter, m.name.ends_with("_total"), "{}", m.name);
            if let Some(unit) = m.unit {
                let base = m.name.trim_end_matches("_total");
                assert!(base.ends_with(&format!("_{unit}")), "{} lacks its unit {unit}", m.name);
            }
            assert!(!m.help.is_empty() && !m.help.contains('\n'), "{}", m.name);
        }
        assert_eq!(metric_of_series("proofline_task_run_seconds_bucket").map(|m| m.name), Some(TASK_RUN));
        assert_eq!(metric_of_series("proofline_jobs_count"), None, "a gauge has no _count series");
    }
}
