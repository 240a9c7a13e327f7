//! End-to-end keccak proving vs Plonky3 called directly on the same permutations.
//!
//! "Direct" is one `p3_uni_stark::prove` of the stock `KeccakAir` over every permutation
//! of the block, same field, hash and FRI parameters, one thread. End to end is
//! `plan → segments → streaming fold → wrap` through the embedded runtime.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use proofline_keccak::witness::parse_block_witness;
use proofline_keccak::{DEFAULT_SEGMENT_SIZE, KeccakPlugin, permutation_inputs, prove_plain};
use proofline_runtime::embedded::Embedded;
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::MemStore;
use proofline_runtime::worker::WorkerConfig;

/// Prove `input` end to end on `lanes` lanes; returns (seconds, segments, proof bytes).
async fn end_to_end_once(input: &[u8], lanes: usize) -> anyhow::Result<(f64, usize, usize)> {
    let plugin: Arc<dyn ProofSystem> = Arc::new(KeccakPlugin);
    let mut plugins = PluginRegistry::new();
    plugins.register(plugin.clone());
    let cluster = Embedded::start(
        plugins,
        Arc::new(MemStore::default()),
        WorkerConfig::new("bench", lanes),
        Default::default(),
    )
    .await?;
    let started = Instant::now();
    let plan = plugin.plan(input, &PlanOptions::default())?;
    let segments = plan.segments.len();
    let out = cluster.leader.prove(plugin.clone(), plan).await?;
    let secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(matches!(plugin.verify(&out.proof)?, Verdict::Valid { .. }), "proof does not verify");
    Ok((secs, segments, out.proof.len()))
}

pub async fn end_to_end(blocks: &[PathBuf], max_lanes: usize) -> anyhow::Result<()> {
    println!(
        "| block | Keccak-f | segments | Plonky3 direct, 1 call | Plonky3 direct, segment-sized calls | Proofline 1 lane | vs 1 call | vs segment calls | Proofline {max_lanes} lanes | vs 1 call | final proof |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for path in blocks {
        let input = std::fs::read(path)?;
        let witness = parse_block_witness(&input).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let perms = permutation_inputs(&witness);
        let n = perms.len();
        // The same permutations in segment-sized calls: what the lanes prove, minus
        // Proofline (binding columns, runtime, fold, wrap).
        let started = Instant::now();
        for chunk in perms.chunks(DEFAULT_SEGMENT_SIZE as usize) {
            prove_plain(chunk.to_vec());
        }
        let chunked = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let direct_bytes = prove_plain(perms);
        let direct = started.elapsed().as_secs_f64();
        let (one, segments, _) = end_to_end_once(&input, 1).await?;
        let (many, _, bytes) = end_to_end_once(&input, max_lanes).await?;
        let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        println!(
            "| {name} | {n} | {segments} | {direct:.2} s ({:.2} MB) | {chunked:.2} s | {one:.2} s | **{:.2}** | **{:.2}** | {many:.2} s | **{:.2}** | {:.2} MB |",
            direct_bytes as f64 / 1e6,
            one / direct,
            one / chunked,
            many / direct,
            bytes as f64 / 1e6
        );
    }
    Ok(())
}
