//! Cluster mode against a real RabbitMQ and real `proofline-worker` processes: work
//! survives killed workers, a restarted broker, poison tasks and garbage messages.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WorkerProcess, example_block, leader, publish_raw, wait_for_queue_depth};
use proofline_keccak::KeccakPlugin;
use proofline_runtime::leader::ledger::Failure;
use proofline_runtime::leader::{JobError, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, ProofSystem, Verdict};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker as Broker;

fn keccak_plan(segment_size: u64) -> (Arc<dyn ProofSystem>, proofline_runtime::plugin::Plan) {
    let plugin: Arc<dyn ProofSystem> = Arc::new(KeccakPlugin);
    let plan = plugin.plan(&example_block(), &PlanOptions { segment_size: Some(segment_size) }).unwrap();
    (plugin, plan)
}

fn assert_verifies(plugin: &Arc<dyn ProofSystem>, proof: &[u8]) {
    match plugin.verify(proof).unwrap() {
        Verdict::Valid { .. } => {}
        Verdict::Invalid { reason } => panic!("proof does not verify: {reason}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_sigkill_mid_job_loses_nothing() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let a = WorkerProcess::spawn("a", &broker.amqp_uri(), store.path(), &["--lanes", "1"]);
    let b = WorkerProcess::spawn("b", &broker.amqp_uri(), store.path(), &["--lanes", "1"]);
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let (plugin, plan) = keccak_plan(200);
    let segments = plan.segments.len() as u32;
    let job = leader.submit(plugin.clone(), plan).await.unwrap();
    let mut progress = job.progress.clone();
    // Kill worker `a` once proving is under way.
    tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.segments_done >= 2))
        .await
        .unwrap()
        .unwrap();
    let mut a = a;
    a.child.kill().unwrap(); // SIGKILL
    let out = tokio::time::timeout(Duration::from_secs(300), job.wait()).await.unwrap().unwrap();
    assert_eq!((out.stats.segments, out.stats.aggregations), (segments, segments - 1));
    assert_verifies(&plugin, &out.proof);
    assert!(b.log().contains("worker started"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_restarted_mid_job_is_survived() {
    let mut broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let _a = WorkerProcess::spawn("a", &broker.amqp_uri(), store.path(), &["--lanes", "2"]);
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let (plugin, plan) = keccak_plan(250);
    let job = leader.submit(plugin.clone(), plan).await.unwrap();
    let mut progress = job.progress.clone();
    tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.segments_done >= 1))
        .await
        .unwrap()
        .unwrap();
    broker.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.start();
    let out = tokio::time::timeout(Duration::from_secs(300), job.wait()).await.unwrap().unwrap();
    assert_verifies(&plugin, &out.proof);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_always_fails_is_dead_lettered_and_named() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let _a = WorkerProcess::spawn("a", &broker.amqp_uri(), store.path(), &["--lanes", "2"]);
    let config =
        LeaderConfig { max_attempts: 3, task_deadline: Duration::from_secs(30), ..Default::default() };
    let leader = leader(&broker.amqp_uri(), store.path(), config).await;
    let sim = SimPlugin::new();
    let workload =
        br#"{"tasks": 8, "cost": {"fixed": {"micros": 0}}, "fail": {"segments": [5], "mode": "retryable"}}"#;
    let plan = sim.plan(workload, &PlanOptions::default()).unwrap();
    let started = Instant::now();
    let err = leader.prove(Arc::new(sim), plan).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "failed within the deadline");
    assert!(
        matches!(err, JobError::Failed(Failure::TaskFailed { ref task, attempts: 3, .. }) if task == "seg-5"),
        "{err}"
    );
    assert!(err.to_string().contains("injected failure in segment 5"), "{err}");
    wait_for_queue_depth(&broker, "proofline.dead", 1, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbage_message_is_dead_lettered_and_workers_keep_working() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let a = WorkerProcess::spawn("a", &broker.amqp_uri(), store.path(), &["--lanes", "2"]);
    publish_raw(&broker.amqp_uri(), "proofline.tasks", b"\x01 this is not an envelope").await;
    wait_for_queue_depth(&broker, "proofline.dead", 1, Duration::from_secs(10));
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let sim = SimPlugin::new();
    let plan =
        sim.plan(br#"{"tasks": 20, "cost": {"fixed": {"micros": 100}}}"#, &PlanOptions::default()).unwrap();
    let out = leader.prove(Arc::new(sim.clone()), plan).await.unwrap();
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
    assert!(a.log().contains("dead-letter"), "the worker says what it did:\n{}", a.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_work_back_and_exits_zero() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let a = WorkerProcess::spawn(
        "a",
        &broker.amqp_uri(),
        store.path(),
        &["--lanes", "1", "--shutdown-grace-secs", "1"],
    );
    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let sim = SimPlugin::new();
    let plan = sim
        .plan(
            br#"{"tasks": 12, "cost": {"fixed": {"micros": 300000}}, "work": "sleep"}"#,
            &PlanOptions::default(),
        )
        .unwrap();
    let job = leader.submit(Arc::new(sim.clone()), plan).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut a = a;
    a.signal("TERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = a.child.wait().unwrap();
        (status, a.log())
    });
    let (status, log) = tokio::time::timeout(Duration::from_secs(10), status).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{log}");
    assert!(log.contains("shutting down"), "{log}");
    // A second worker finishes the job: nothing was lost with the first.
    let _b = WorkerProcess::spawn("b", &broker.amqp_uri(), store.path(), &["--lanes", "2"]);
    let out = tokio::time::timeout(Duration::from_secs(60), job.wait()).await.unwrap().unwrap();
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
}

#[test]
fn a_wrong_broker_address_or_password_fails_fast_with_exit_1() {
    let broker = Broker::start_new();
    let bad_password = broker.amqp_uri().replacen("guest:guest", "guest:wrong", 1);
    for uri in ["amqp://127.0.0.1:1/%2f".to_owned(), bad_password] {
        let uri: &str = &uri;
        let started = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_proofline-worker"))
            .args(["--amqp-uri", uri, "--health-addr", "127.0.0.1:0"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
        assert!(stderr.contains("connecting to the broker"), "{stderr}");
        assert!(!stderr.contains("wrong"), "the password is never printed: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
