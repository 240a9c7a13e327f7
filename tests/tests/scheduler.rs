//! The runtime's scheduling guarantees, end to end in one process with the sim plugin:
//! nothing lost when a lane dies, nothing counted twice, idle lanes steal, failures
//! are retried or reported with the task's name.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::ledger::Failure;
use proofline_runtime::leader::{JobError, LeaderConfig};
use proofline_runtime::plugin::{Plan, PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::MemStore;
use proofline_runtime::worker::WorkerConfig;
use proofline_sim::SimPlugin;
use serde_json::json;

async fn cluster(
    sim: &SimPlugin,
    lanes: usize,
    prefetch: usize,
    steal: bool,
    leader: LeaderConfig,
) -> Embedded {
    let mut plugins = PluginRegistry::new();
    plugins.register(Arc::new(sim.clone()));
    let mut worker = WorkerConfig::new("test", lanes);
    worker.prefetch = prefetch;
    worker.steal = steal;
    Embedded::start(plugins, Arc::new(MemStore::default()), worker, leader).await.unwrap()
}

fn plan(sim: &SimPlugin, workload: serde_json::Value) -> Plan {
    sim.plan(workload.to_string().as_bytes(), &PlanOptions::default()).unwrap()
}

/// `plan` with its segment 0 taken from `long` (same index 0, another cost).
fn with_first_segment_of(plan: Plan, long: Plan) -> Plan {
    let mut segments = plan.segments.into_vec();
    segments[0] = long.segments.into_iter().next().expect("one segment");
    Plan { segments: segments.into(), ..plan }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folds_every_segment_exactly_once() {
    let sim = SimPlugin::new();
    let c = cluster(&sim, 2, 16, true, LeaderConfig::default()).await;
    let out = c
        .leader
        .prove(Arc::new(sim.clone()), plan(&sim, json!({"tasks": 500, "cost": {"fixed": {"micros": 0}}})))
        .await
        .unwrap();
    assert_eq!(out.stats.segments, 500);
    assert_eq!(out.stats.aggregations, 499);
    assert_eq!(out.stats.duplicates, 0);
    assert_eq!(sim.counters().segments_completed.load(Ordering::Relaxed), 500);
    assert_eq!(sim.counters().aggregations_completed.load(Ordering::Relaxed), 499);
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
    assert_eq!(c.broker.stats().unacked, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_killed_mid_task_loses_nothing_and_counts_nothing_twice() {
    let sim = SimPlugin::new();
    let c = cluster(&sim, 2, 4, true, LeaderConfig::default()).await;
    let workload = json!({"tasks": 30, "cost": {"fixed": {"micros": 20000}}, "work": "sleep"});
    let job = c.leader.submit(Arc::new(sim.clone()), plan(&sim, workload)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    c.kill_lane(0);
    tokio::time::sleep(Duration::from_millis(60)).await;
    c.kill_lane(1);
    let out = job.wait().await.unwrap();
    let stats = c.worker_stats().await;
    assert!(stats.lane_restarts >= 2, "both lanes died and came back: {stats:?}");
    assert!(c.broker.stats().redelivered >= 2, "the killed lanes' tasks were redelivered");
    // A kill that lands after a task's work ended but before its result went out
    // loses that result, as `kill -9` would: the task runs again (at most once per
    // kill), and the fold still counts every segment exactly once.
    let executed = sim.counters().segments_completed.load(Ordering::Relaxed);
    assert!((30..=30 + stats.lane_restarts).contains(&executed), "{executed} executions: {stats:?}");
    assert_eq!((out.stats.segments, out.stats.aggregations, out.stats.duplicates), (30, 29, 0));
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_lane_steals_work_queued_on_a_busy_one() {
    let sim = SimPlugin::new();
    // Everything is prefetched at once; segment 0 is long, the rest short.
    let c = cluster(&sim, 2, 64, true, LeaderConfig::default()).await;
    let mut workload = json!({"tasks": 20, "cost": {"fixed": {"micros": 3000}}, "work": "sleep"});
    workload["cost"] = json!({"uniform": {"min_micros": 3000, "max_micros": 3000}});
    let long = plan(&sim, json!({"tasks": 1, "cost": {"fixed": {"micros": 300000}}, "work": "sleep"}));
    let p = with_first_segment_of(plan(&sim, workload), long);
    let out = c.leader.prove(Arc::new(sim.clone()), p).await.unwrap();
    assert_eq!(out.stats.segments, 20);
    let stats = c.worker_stats().await;
    let stolen: u64 = stats.lanes.iter().map(|l| l.stolen).sum();
    assert!(stolen > 0, "no steals: {stats:?}");
    // The lane stuck on the long task ran little else: its sibling took the queue.
    let min_executed = stats.lanes.iter().map(|l| l.executed).min().unwrap();
    assert!(min_executed <= 3, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_and_retryable_failures_are_retried() {
    let sim = SimPlugin::new();
    let c = cluster(&sim, 2, 8, true, LeaderConfig::default()).await;
    let workload = json!({"tasks": 10, "cost": {"fixed": {"micros": 0}},
        "fail": {"segments": [3, 7], "mode": "panic", "times": 2}});
    let out = c.leader.prove(Arc::new(sim.clone()), plan(&sim, workload)).await.unwrap();
    assert_eq!(out.stats.retries, 4);
    assert_eq!(sim.counters().failures_injected.load(Ordering::Relaxed), 4);
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_keeps_failing_fails_the_job_naming_it() {
    let sim = SimPlugin::new();
    let c = cluster(&sim, 2, 8, true, LeaderConfig { max_attempts: 3, ..Default::default() }).await;
    let workload = json!({"tasks": 6, "cost": {"fixed": {"micros": 0}},
        "fail": {"segments": [4], "mode": "retryable"}});
    let err = c.leader.prove(Arc::new(sim.clone()), plan(&sim, workload)).await.unwrap_err();
    assert!(
        matches!(err, JobError::Failed(Failure::TaskFailed { ref task, attempts: 3, .. }) if task == "seg-4"),
        "{err}"
    );
    assert!(err.to_string().contains("injected failure in segment 4"), "{err}");

    let workload = json!({"tasks": 6, "cost": {"fixed": {"micros": 0}},
        "fail": {"segments": [2], "mode": "permanent"}});
    let err = c.leader.prove(Arc::new(sim.clone()), plan(&sim, workload)).await.unwrap_err();
    assert!(
        matches!(err, JobError::Failed(Failure::TaskFailed { ref task, attempts: 1, .. }) if task == "seg-2"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_task_is_redispatched_and_the_first_success_wins() {
    let sim = SimPlugin::new();
    let leader =
        LeaderConfig { task_deadline: Duration::from_millis(150), max_attempts: 5, ..Default::default() };
    let c = cluster(&sim, 2, 2, true, leader).await;
    // Segment 0 takes longer than the deadline; its re-dispatch runs on the other lane.
    let p = plan(&sim, json!({"tasks": 4, "cost": {"fixed": {"micros": 1000}}, "work": "sleep"}));
    let long = plan(&sim, json!({"tasks": 1, "cost": {"fixed": {"micros": 400000}}, "work": "sleep"}));
    let p = with_first_segment_of(p, long);
    let out = c.leader.prove(Arc::new(sim.clone()), p).await.unwrap();
    assert!(out.stats.redispatches >= 1, "{:?}", out.stats);
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
}
