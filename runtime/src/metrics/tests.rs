//! Unit tests of the metrics module: every listed metric is rendered, nothing else is,
//! and the leader's outstanding-work sums follow per-job updates.

use std::collections::BTreeSet;
use std::time::Duration;

use super::store::{StoreKind, StoreOp};
use super::*;

/// Touch every series group and every histogram once.
fn record_everything() {
    install().unwrap();
    install().unwrap(); // idempotent
    worker::set_lanes(2, 1);
    worker::task_started(TaskKind::Segment, Duration::from_millis(3));
    worker::task_finished(TaskKind::Segment, TaskOutcome::Done, Some(Duration::from_millis(250)));
    worker::lane_busy(Device::Cpu, Duration::from_micros(1_500_001));
    worker::set_tasks_held(3);
    worker::dead_lettered(worker::DeadLetter::Malformed);
    store::operation(StoreOp::Put, StoreKind::Fs, Duration::from_micros(700), 1234);
    store::cache_hit();
    store::cache_miss();
    broker_reconnected(BrokerRole::Worker);
    leader::task_started(Kind::Aggregate, Duration::from_millis(40));
    leader::task_finished(Kind::Wrap, TaskOutcome::Done, Some(Duration::from_secs(2)));
    leader::task_retried();
    leader::task_redispatched(leader::Redispatch::Timeout);
    leader::task_repaired();
    leader::set_queued_jobs(1);
    leader::set_running_jobs(2);
    leader::job_finished(leader::JobOutcome::Proven, Duration::from_secs(42));
    leader::set_dispatch_window(64);
}

/// Metric names of the sample lines of an exposition.
fn series_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[test]
fn every_listed_metric_is_rendered_with_help_and_type_and_nothing_else() {
    record_everything();
    let text = render();
    for name in series_names(&text) {
        assert!(metric_of_series(&name).is_some(), "{name} is rendered but not in METRICS");
    }
    for m in METRICS {
        assert!(text.contains(&format!("# HELP {} ", m.name)), "no HELP for {}:\n{text}", m.name);
        assert!(
            text.contains(&format!("# TYPE {} {}\n", m.name, m.kind.as_str())),
            "no TYPE {} for {}:\n{text}",
            m.kind.as_str(),
            m.name
        );
    }
    assert!(text.contains("proofline_worker_lane_busy_seconds_total{device=\"cpu\"} "), "{text}");
    assert!(text.contains("proofline_worker_lanes{device=\"gpu\"} 1\n"), "{text}");
    assert!(text.contains("proofline_store_bytes_total{op=\"put\",store=\"fs\"} "), "{text}");
    assert!(text.contains("proofline_task_run_seconds_bucket{kind=\"wrap\",le=\"3\"} "), "{text}");
    assert!(text.contains("proofline_job_duration_seconds_bucket{le=\"60\"} "), "{text}");
    // Registered label sets are exported at zero before anything happens to them.
    assert!(text.contains("proofline_worker_tasks_total{kind=\"aggregate\",outcome=\"corrupt_input\"} 0\n"));
    assert!(text.contains("proofline_task_redispatches_total{reason=\"silent\"} 0\n"), "{text}");
}

#[test]
fn lane_busy_time_keeps_microseconds() {
    record_everything();
    let text = render();
    let line =
        text.lines().find(|l| l.starts_with("proofline_worker_lane_busy_seconds_total{device=\"cpu\"}"));
    let value: f64 = line.unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 1.5, "{value}");
    let fraction = line.unwrap().rsplit('.').next().unwrap();
    assert_eq!(fraction.len(), 6, "{line:?}");
}

#[test]
fn outstanding_work_is_summed_over_jobs_and_forgotten_per_job() {
    install().unwrap();
    let gauge = |state: &str| {
        let prefix = format!("proofline_outstanding_tasks{{state=\"{state}\"}} ");
        render().lines().find_map(|l| l.strip_prefix(&prefix).map(|v| v.parse::<f64>().unwrap())).unwrap()
    };
    let before = leader::outstanding();
    leader::set_job_outstanding("job-test-a", 10, 4, 1000, 400);
    leader::set_job_outstanding("job-test-b", 2, 1, 200, 100);
    leader::set_job_outstanding("job-test-a", 5, 3, 500, 300); // replaces a's numbers
    let now = leader::outstanding();
    assert_eq!(now.ready_tasks - before.ready_tasks, 7);
    assert_eq!(now.dispatched_cost - before.dispatched_cost, 400);
    assert!(gauge("ready") >= 7.0);
    leader::forget_job("job-test-a");
    leader::forget_job("job-test-b");
    leader::forget_job("job-test-never-seen");
    assert_eq!(leader::outstanding().ready_tasks, before.ready_tasks);
}

#[test]
fn outcomes_map_to_labels() {
    use crate::task::ArtifactRef;
    let done = Outcome::Done(ArtifactRef { uri: "mem:x".into(), blake3: [0; 32], len: 0 });
    assert_eq!(TaskOutcome::of(&done), Some(TaskOutcome::Done));
    let retry = Outcome::Failed { message: String::new(), retryable: true };
    assert_eq!(TaskOutcome::of(&retry).map(TaskOutcome::as_str), Some("retryable"));
    assert_eq!(TaskOutcome::of(&Outcome::Running), None);
    assert_eq!(Device::from(LaneDevice::Gpu(3)).as_str(), "gpu");
    assert_eq!(Kind::from(TaskKind::Aggregate).as_str(), "aggregate");
}

/// What a lane records per task (queue wait, outcome, run time, busy time) costs well
/// under a microsecond: table lookups and atomic adds, no allocation.
#[test]
fn recording_a_task_is_cheap() {
    install().unwrap();
    worker::set_lanes(2, 0);
    const N: u32 = 200_000;
    let started = std::time::Instant::now();
    for i in 0..N {
        let d = Duration::from_micros(u64::from(i % 1000));
        worker::task_started(TaskKind::Segment, d);
        worker::task_finished(TaskKind::Aggregate, TaskOutcome::Done, Some(d));
        worker::lane_busy(Device::Cpu, d);
    }
    let per_task = started.elapsed() / N;
    eprintln!("metrics per task: {per_task:?}");
    // Generous for a debug build on a loaded 2-core machine; measured ~0.15 µs.
    assert!(per_task < Duration::from_micros(5), "{per_task:?} per task");
    let _ = render(); // drains the histogram samples
}

#[test]
fn docs_list_every_metric() {
    let docs = include_str!("../../../docs/METRICS.md");
    for m in METRICS {
        assert!(
            docs.contains(&format!("| `{}` | {} |", m.name, m.kind.as_str())),
            "docs/METRICS.md lacks {}",
            m.name
        );
    }
}
