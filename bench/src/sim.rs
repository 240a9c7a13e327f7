//! Scheduler benchmarks on the sim plugin: overhead per task and makespans.

use std::sync::Arc;
use std::time::Instant;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::leader::scheduler::Scheduling;
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem};
use proofline_runtime::store::MemStore;
use proofline_runtime::worker::WorkerConfig;
use proofline_sim::{SimPlugin, Workload};
use serde_json::json;

use crate::median;

async fn embedded(sim: &SimPlugin, lanes: usize, prefetch: usize, steal: bool) -> anyhow::Result<Embedded> {
    embedded_with(sim, lanes, prefetch, steal, Default::default()).await
}

async fn embedded_with(
    sim: &SimPlugin,
    lanes: usize,
    prefetch: usize,
    steal: bool,
    scheduling: Scheduling,
) -> anyhow::Result<Embedded> {
    let mut plugins = PluginRegistry::new();
    plugins.register(Arc::new(sim.clone()));
    let mut worker = WorkerConfig::new("bench", lanes);
    worker.prefetch = prefetch;
    worker.steal = steal;
    let config = LeaderConfig { scheduling, ..LeaderConfig::default() };
    Ok(Embedded::start(plugins, Arc::new(MemStore::default()), worker, config).await?)
}

/// Seconds to prove `workload` once on `cluster` (planning excluded, like paladin's `run()`).
async fn run_once(
    cluster: &Embedded,
    sim: &SimPlugin,
    workload: &serde_json::Value,
) -> anyhow::Result<(f64, u32)> {
    let plan = sim.plan(workload.to_string().as_bytes(), &PlanOptions::default())?;
    let started = Instant::now();
    let out = cluster.leader.prove(Arc::new(sim.clone()), plan).await?;
    let tasks = out.stats.segments + out.stats.aggregations;
    Ok((started.elapsed().as_secs_f64(), tasks))
}

/// `noop_only`: skip the 1 ms case (what the instruction count runs under valgrind).
pub async fn runtime_overhead(
    tasks: u32,
    reps: usize,
    scheduling: Scheduling,
    noop_only: bool,
) -> anyhow::Result<()> {
    let sim = SimPlugin::new();
    eprintln!("dispatch: {:?}, window {:?}", scheduling.policy, scheduling.window);
    let cluster = embedded_with(&sim, 2, 512, true, scheduling).await?;
    // Warm up (like paladin's harness: a long-lived leader).
    run_once(&cluster, &sim, &json!({"tasks": 200, "cost": {"fixed": {"micros": 0}}})).await?;

    println!("| case | tasks | median time | tasks/s | per task |");
    println!("|---|---|---|---|---|");
    let noop = json!({"tasks": tasks, "cost": {"fixed": {"micros": 0}}});
    let mut times = vec![];
    let mut total = 0;
    for _ in 0..reps {
        let (t, n) = run_once(&cluster, &sim, &noop).await?;
        times.push(t);
        total = n;
    }
    let t = median(&mut times);
    println!(
        "| no-op map+fold, in-memory, 2 lanes | {total} ({tasks} segments + {} aggregations) | {:.1} ms | {:.0} | {:.2} µs |",
        total - tasks,
        t * 1e3,
        f64::from(total) / t,
        t * 1e6 / f64::from(total)
    );

    if noop_only {
        return Ok(());
    }
    let n = 1000;
    let spin = json!({"tasks": n, "cost": {"fixed": {"micros": 1000}}, "work": "spin"});
    let mut times = vec![];
    for _ in 0..reps {
        times.push(run_once(&cluster, &sim, &spin).await?.0);
    }
    let t = median(&mut times);
    eprintln!("lane stats after the 1 ms runs: {:?}", cluster.worker_stats().await);
    let ideal = f64::from(n) * 1e-3 / 2.0;
    println!(
        "| 1 ms spin tasks, 2 lanes | {n} segments + {} no-op aggregations | {:.1} ms | ideal {:.0} ms | **{:.1}% of ideal** |",
        n - 1,
        t * 1e3,
        ideal * 1e3,
        100.0 * ideal / t
    );
    Ok(())
}

pub async fn stealing_makespan(tasks: u32, reps: usize) -> anyhow::Result<()> {
    let workload = json!({"tasks": tasks, "seed": 11, "work": "sleep",
        "cost": {"heavy_tailed": {"min_micros": 2000, "alpha": 1.3, "max_micros": 250000}}});
    let costs = serde_json::from_value::<Workload>(workload.clone())?.costs().map_err(anyhow::Error::msg)?;
    let total: u64 = costs.iter().sum();
    let longest = *costs.iter().max().expect("tasks > 0");
    println!(
        "Workload: {tasks} sleep tasks, Pareto(alpha 1.3, min 2 ms, cap 250 ms), seed 11: total {:.0} ms, longest {:.0} ms.\n",
        total as f64 / 1e3,
        longest as f64 / 1e3
    );
    println!("| lanes | prefetch | stealing | median makespan | lower bound | makespan / bound |");
    println!("|---|---|---|---|---|---|");
    for lanes in [2usize, 4] {
        let bound = (total as f64 / lanes as f64).max(longest as f64) / 1e6;
        for steal in [false, true] {
            let prefetch = 8 * lanes;
            let sim = SimPlugin::new();
            let cluster = embedded(&sim, lanes, prefetch, steal).await?;
            let mut times = vec![];
            for _ in 0..reps {
                times.push(run_once(&cluster, &sim, &workload).await?.0);
            }
            let t = median(&mut times);
            println!(
                "| {lanes} | {prefetch} | {} | {:.0} ms | {:.0} ms | **{:.3}** |",
                if steal { "on" } else { "off" },
                t * 1e3,
                bound * 1e3,
                t / bound
            );
        }
    }
    Ok(())
}
