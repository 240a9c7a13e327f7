//! End to end, in memory, on real Ethereum blocks: every witness format proves through
//! the runtime, and the final proof verifies and binds the real block hash and the
//! parent's state root.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use proofline_keccak::KeccakPlugin;
use proofline_runtime::embedded::Embedded;
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::FsStore;
use proofline_runtime::worker::WorkerConfig;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(name)
}

/// Prove `file` through the embedded runtime and return the verifier's statement.
async fn prove_and_verify(file: &str) -> String {
    let input = std::fs::read(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let plugin: Arc<dyn ProofSystem> = Arc::new(KeccakPlugin);
    let plan = plugin.plan(&input, &PlanOptions::default()).unwrap();
    assert!(plan.segments.len() >= 2, "a real block spans several segments");
    let mut plugins = PluginRegistry::new();
    plugins.register(plugin.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsStore::open(dir.path().to_str().unwrap()).unwrap());
    let cluster =
        Embedded::start(plugins, store, WorkerConfig::new("test", 2), Default::default()).await.unwrap();
    let out = cluster.leader.prove(plugin.clone(), plan).await.unwrap();
    assert_eq!(out.stats.duplicates, 0);
    // The job's artifacts are gone once it succeeded.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    match plugin.verify(&out.proof).unwrap() {
        Verdict::Valid { statement } => statement,
        Verdict::Invalid { reason } => panic!("{file}: proof does not verify: {reason}"),
    }
}

const MAINNET_HASH: &str = "0x0497f69549701d578c67a43951f9e4fcb92b1691b9f6bbdfa63a17bc41d3971e";
const MAINNET_PARENT_STATE_ROOT_PREFIX: &str = "0xbe3cc284";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zkpig_mainnet_block() {
    let statement = prove_and_verify("mainnet-22615247.zkpig.json").await;
    assert!(statement.contains(MAINNET_HASH), "{statement}");
    assert!(statement.contains(MAINNET_PARENT_STATE_ROOT_PREFIX), "{statement}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canonical_mainnet_block() {
    let statement = prove_and_verify("mainnet-22615247.canonical.json").await;
    assert!(statement.contains(MAINNET_HASH), "{statement}");
    assert!(statement.contains(MAINNET_PARENT_STATE_ROOT_PREFIX), "{statement}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethrex_replay_hoodi_block() {
    let statement = prove_and_verify("hoodi-1265656.ethrex-replay.json").await;
    assert!(
        statement.contains("0xac77c202b2b33da757f785a4c240333c7d148bc2558f19c483e42fe3ca1ce6db"),
        "{statement}"
    );
    assert!(statement.contains("0x4bec425c"), "{statement}");
}
