//! Artifact store overhead: the same sim workload with 1 MiB artifacts on the fs store,
//! on S3 (a local moto server) without a cache, and on S3 behind the worker cache.

use std::sync::Arc;
use std::time::Instant;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem};
use proofline_runtime::store::{ArtifactStore, CachedStore, FsStore, S3Store};
use proofline_runtime::worker::WorkerConfig;
use proofline_sim::SimPlugin;
use proofline_tests::s3::S3Server;
use serde_json::json;

use crate::median;

const TASKS: u32 = 64;

async fn run(store: Arc<dyn ArtifactStore>, reps: usize) -> anyhow::Result<(f64, u32)> {
    let sim = SimPlugin::new();
    let mut plugins = PluginRegistry::new();
    plugins.register(Arc::new(sim.clone()));
    let cluster = Embedded::start(plugins, store, WorkerConfig::new("bench", 2), Default::default()).await?;
    let workload = json!({"tasks": TASKS, "cost": {"fixed": {"micros": 0}}, "artifact_bytes": 1 << 20});
    let mut times = vec![];
    let mut tasks = 0;
    for _ in 0..reps {
        let plan = sim.plan(workload.to_string().as_bytes(), &PlanOptions::default())?;
        let started = Instant::now();
        let out = cluster.leader.prove(Arc::new(sim.clone()), plan).await?;
        times.push(started.elapsed().as_secs_f64());
        tasks = out.stats.segments + out.stats.aggregations;
    }
    Ok((median(&mut times), tasks))
}

pub fn store_overhead(reps: usize) -> anyhow::Result<()> {
    let server = S3Server::moto();
    server.create_bucket("bench");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let dir = tempfile::tempdir()?;
    let fs: Arc<dyn ArtifactStore> = Arc::new(FsStore::open(dir.path().to_str().unwrap_or("."))?);
    let s3: Arc<dyn ArtifactStore> = Arc::new(S3Store::connect(server.config("bench", "plain"))?);
    let cached =
        Arc::new(CachedStore::new(Arc::new(S3Store::connect(server.config("bench", "cached"))?), 1 << 30));

    println!(
        "{TASKS} sim segments + {} aggregations, every artifact 1 MiB, embedded runtime, 2 lanes, median of {reps}.\n",
        TASKS - 1
    );
    println!("| store | job time | per task | vs fs |");
    println!("|---|---|---|---|");
    let (fs_t, n) = rt.block_on(run(fs, reps))?;
    let per = |t: f64| t * 1e3 / f64::from(n);
    println!("| fs (local disk) | {:.0} ms | {:.2} ms | 1.00 |", fs_t * 1e3, per(fs_t));
    let (s3_t, _) = rt.block_on(run(s3, reps))?;
    println!(
        "| s3 (moto on loopback), no cache | {:.0} ms | {:.2} ms | **{:.2}** |",
        s3_t * 1e3,
        per(s3_t),
        s3_t / fs_t
    );
    let (c_t, _) = rt.block_on(run(cached.clone(), reps))?;
    println!(
        "| s3 + worker cache (1 GiB) | {:.0} ms | {:.2} ms | **{:.2}** |",
        c_t * 1e3,
        per(c_t),
        c_t / fs_t
    );
    let stats = cached.stats();
    println!(
        "\nCache: {} hits, {} misses: hit rate **{:.1}%** over all reads (segment payloads, aggregation inputs).",
        stats.hits,
        stats.misses,
        100.0 * stats.hits as f64 / (stats.hits + stats.misses).max(1) as f64
    );
    Ok(())
}
