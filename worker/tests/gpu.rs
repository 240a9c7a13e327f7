//! GPU lanes of `proofline-worker` (lavapipe in CI): `--gpu required` names its adapter
//! and runs tasks on GPU lanes, a Keccak segment on a GPU lane runs its kernels on the
//! device (the worker logs the device's counters per segment); without an adapter it
//! fails at once with exit code 1.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{WorkerProcess, example_block, leader};
use proofline_keccak::KeccakPlugin;
use proofline_keccak::sponge::keccak256;
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

    // A Keccak segment the lane's production thresholds put on the device: the kernels
    // ran there and nothing fell back to the CPU (which would prove the same block).
    let plan =
        KeccakPlugin.plan(&small_block(), &PlanOptions { segment_size: Some(MAX_PERMS as u64) }).unwrap();
    assert_eq!(plan.segments.len(), 1, "{}", plan.summary);
    let out = leader.prove(Arc::new(KeccakPlugin), plan).await.unwrap();
    assert!(matches!(KeccakPlugin.verify(&out.proof).unwrap(), Verdict::Valid { .. }));
    worker.wait_for_log("segment proven on", Duration::from_secs(10));
    let log = worker.log();
    let line = log.lines().find(|l| l.contains("segment proven on")).unwrap();
    let counter = |name: &str| -> u64 {
        let key = format!(" {name}=");
        let at = line.find(&key).unwrap_or_else(|| panic!("no {name}= in {line:?}")) + key.len();
        line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    assert!(counter("launches") > 0 && counter("fallbacks") == 0, "{line}");
}

/// Permutations of the smallest trace `Offload::DEFAULT` sends to the device (2^12 rows of
/// 24 per permutation), and the most that still fit it.
const MIN_PERMS: usize = 129;
const MAX_PERMS: usize = (1 << 12) / 24;

/// The example block cut down to one device-sized segment: its header and ancestors, the
/// parent state root's node and just enough other state nodes; no codes, no keys.
fn small_block() -> Vec<u8> {
    let mut doc: serde_json::Value = serde_json::from_slice(&example_block()).unwrap();
    let unhex = |s: &str| -> Vec<u8> {
        let s = s.trim_start_matches("0x");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    };
    let root = unhex(doc["parentStateRoot"].as_str().unwrap());
    let nodes: Vec<serde_json::Value> = doc["witness"]["state"].as_array().unwrap().clone();
    let (root_node, others): (Vec<_>, Vec<_>) =
        nodes.into_iter().partition(|n| keccak256(&unhex(n.as_str().unwrap()))[..] == root[..]);
    assert_eq!(root_node.len(), 1, "the example block holds its state root node");
    doc["witness"]["codes"] = serde_json::json!([]);
    doc["witness"]["keys"] = serde_json::json!([]);
    let mut state = root_node;
    for node in others {
        doc["witness"]["state"] = serde_json::Value::Array(state.clone());
        let block = serde_json::to_vec(&doc).unwrap();
        let plan = KeccakPlugin.plan(&block, &PlanOptions { segment_size: Some(1 << 12) }).unwrap();
        let perms: u64 = plan.segments.iter().map(|s| s.cost).sum();
        if perms as usize >= MIN_PERMS {
            assert!(perms as usize <= MAX_PERMS, "{perms} permutations overshoot one 2^12-row trace");
            return block;
        }
        state.push(node);
    }
    panic!("the example block is too small");
}
