//! GPU lanes of `proofline-worker` (lavapipe in CI): `--gpu required` names its adapter
//! and runs tasks on GPU lanes; without an adapter it fails at once with exit code 1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WorkerProcess, leader};
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::plugin::{PlanOptions, ProofSystem, Verdict};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker as Broker;

#[test]
fn gpu_required_without_an_adapter_fails_fast_with_exit_1() {
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proofline-worker"))
        .args(["--gpu", "required", "--amqp-uri", "amqp://127.0.0.1:1/%2f", "--health-addr", "127.0.0.1:0"])
        .env("WGPU_ADAPTER_NAME", "no-such-adapter")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    assert!(stderr.contains("--gpu required") && stderr.contains("no GPU adapter found"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_only_worker_names_its_adapter_and_runs_the_job() {
    let broker = Broker::start_new();
    let store = tempfile::tempdir().unwrap();
    let worker =
        WorkerProcess::spawn("g", &broker.amqp_uri(), store.path(), &["--lanes", "0", "--gpu", "required"]);
    let log = worker.log();
    let line = log.lines().find(|l| l.contains("consuming tasks from")).unwrap();
    assert!(line.contains("0 CPU lanes") && line.contains("1 GPU lane(s) on"), "{line}");
    assert!(line.contains("Vulkan"), "the start-up line names the backend: {line}");

    let leader = leader(&broker.amqp_uri(), store.path(), LeaderConfig::default()).await;
    let sim = SimPlugin::new();
    let plan =
        sim.plan(br#"{"tasks": 16, "cost": {"fixed": {"micros": 200}}}"#, &PlanOptions::default()).unwrap();
    let out = leader.prove(Arc::new(sim.clone()), plan).await.unwrap();
    assert!(matches!(sim.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
    assert_eq!(out.stats.segments, 16);
}
