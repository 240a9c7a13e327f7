//! End to end, in memory, on real Ethereum blocks: every witness format proves through
//! the runtime, and the final proof verifies and binds the real block hash and the
//! parent's state root (the canonical fixture by planning exactly as the ZK-PIG one).

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

/// The canonical fixture is the ZK-PIG block in Proofline's own format: it plans to the
/// very same segments and statement, so (the prover being deterministic) its proof is
/// byte for byte the one `zkpig_mainnet_block` proves and verifies. Proving it again
/// would cost a minute of CI for nothing.
#[test]
fn canonical_mainnet_block_plans_exactly_as_the_zkpig_one() {
    let plan = |file: &str| {
        let input = std::fs::read(fixture(file)).unwrap();
        KeccakPlugin.plan(&input, &PlanOptions::default()).unwrap()
    };
    let (canonical, zkpig) = (plan("mainnet-22615247.canonical.json"), plan("mainnet-22615247.zkpig.json"));
    assert_eq!(canonical.meta, zkpig.meta, "the same statement");
    assert_eq!(canonical.segments.len(), zkpig.segments.len());
    for (i, (c, z)) in canonical.segments.iter().zip(zkpig.segments.iter()).enumerate() {
        assert_eq!((&c.payload, c.cost), (&z.payload, z.cost), "segment {i}");
    }
    assert!(canonical.summary.contains(&MAINNET_HASH[..6]), "{}", canonical.summary);
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
