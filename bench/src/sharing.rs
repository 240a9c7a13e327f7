//! Sharing the workers among concurrent jobs: per-job completion times and makespan
//! of the leader's share policies on one batch of sim jobs.
//!
//! Every job is submitted at once, oldest first (order 0, 1, ...). Segments and
//! aggregations sleep (no CPU contention), so what differs between policies is only
//! which task a free lane gets next. "Job i done" is measured from the common start.

use std::sync::Arc;
use std::time::Instant;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::scheduler::{Scheduling, SharePolicy};
use proofline_runtime::leader::{JobOptions, Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem};
use proofline_runtime::store::MemStore;
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_runtime::worker::WorkerConfig;
use proofline_sim::SimPlugin;
use serde_json::json;

use crate::amqp::{Workers, scratch};

const POLICIES: [SharePolicy; 4] =
    [SharePolicy::Fair, SharePolicy::Fifo, SharePolicy::RoundRobin, SharePolicy::Unbounded];

/// The batch: `jobs` sim jobs of `tasks` segments; segments and aggregations sleep `micros`.
struct Batch {
    jobs: usize,
    tasks: u32,
    micros: u64,
}

impl Batch {
    fn workload(&self, job: usize) -> serde_json::Value {
        json!({"tasks": self.tasks, "seed": job, "work": "sleep", "aggregate_micros": self.micros,
               "cost": {"fixed": {"micros": self.micros}}})
    }

    /// Seconds from the common start to each job's proof, in job order.
    async fn run(&self, leader: &Leader, sim: &SimPlugin) -> anyhow::Result<Vec<f64>> {
        let started = Instant::now();
        let mut waits = Vec::new();
        for job in 0..self.jobs {
            let plan = sim.plan(self.workload(job).to_string().as_bytes(), &PlanOptions::default())?;
            let options = JobOptions { order: Some(job as u64), ..JobOptions::default() };
            let handle = leader.submit_with(Arc::new(sim.clone()), plan, options).await?;
            waits.push(tokio::spawn(async move {
                let out = handle.wait().await;
                (out, started.elapsed().as_secs_f64())
            }));
        }
        let mut done = Vec::new();
        for wait in waits {
            let (out, secs) = wait.await?;
            leader.discard(&out?.job).await?;
            done.push(secs);
        }
        Ok(done)
    }

    fn ideal(&self, lanes: usize) -> f64 {
        let tasks = self.jobs as f64 * (2.0 * f64::from(self.tasks) - 1.0);
        tasks * self.micros as f64 / 1e6 / lanes as f64
    }
}

fn config(policy: SharePolicy) -> LeaderConfig {
    LeaderConfig { scheduling: Scheduling { policy, ..Scheduling::default() }, ..LeaderConfig::default() }
}

fn name(policy: SharePolicy) -> &'static str {
    match policy {
        SharePolicy::Fair => "fair (default: oldest first, window)",
        SharePolicy::Fifo => "fifo (oldest first, window)",
        SharePolicy::RoundRobin => "round robin (window)",
        SharePolicy::Unbounded => "plain FIFO publishing (no window)",
    }
}

fn row(setup: &str, policy: SharePolicy, done: &[f64], ideal: f64) {
    let jobs: Vec<String> = done.iter().map(|s| format!("{s:.2}")).collect();
    let mean = done.iter().sum::<f64>() / done.len() as f64;
    let makespan = done.iter().copied().fold(0.0, f64::max);
    println!(
        "| {setup} | {} | {} | **{:.2}** | {mean:.2} | {makespan:.2} (ideal {ideal:.2}) |",
        name(policy),
        jobs.join(" · "),
        done[0],
    );
}

pub async fn sharing(jobs: usize, tasks: u32, micros: u64, amqp_workers: usize) -> anyhow::Result<()> {
    let batch = Batch { jobs, tasks, micros };
    let sim = SimPlugin::new();
    println!(
        "{jobs} jobs x {tasks} segments (+ {} aggregations each), every task sleeps {:.0} ms; \
         all submitted at once, oldest first. Seconds from the start to each job's proof.\n",
        tasks - 1,
        micros as f64 / 1e3
    );
    println!("| setup | policy | job 1 · 2 · ... done (s) | job 1 | mean job | makespan |");
    println!("|---|---|---|---|---|---|");
    for lanes in [2, 4] {
        for policy in POLICIES {
            let mut plugins = PluginRegistry::new();
            plugins.register(Arc::new(sim.clone()));
            let worker = WorkerConfig::new("bench", lanes);
            let cluster =
                Embedded::start(plugins, Arc::new(MemStore::default()), worker, config(policy)).await?;
            let done = batch.run(&cluster.leader, &sim).await?;
            row(&format!("in-memory, {lanes} lanes"), policy, &done, batch.ideal(lanes));
        }
    }
    if amqp_workers > 0 {
        let broker = proofline_tests::rabbit::RabbitBroker::start_new();
        let uri = broker.amqp_uri();
        let store = scratch()?;
        let workers = Workers::spawn(amqp_workers, &uri, store.path(), &["--lanes", "1"])?;
        for policy in POLICIES {
            let transport: Arc<dyn Transport> =
                Arc::new(AmqpTransport::connect(AmqpConfig::new(&uri)).await?);
            let fs = Arc::new(proofline_runtime::store::FsStore::open(store.path().to_str().unwrap_or("."))?);
            let leader = Leader::start(transport, fs, config(policy)).await?;
            let done = batch.run(&leader, &sim).await?;
            row(&format!("AMQP, {amqp_workers} workers x 1 lane"), policy, &done, batch.ideal(amqp_workers));
        }
        drop(workers);
    }
    Ok(())
}
