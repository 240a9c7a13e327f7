//! Cluster benchmarks over a real local RabbitMQ and real `proofline-worker` processes:
//! throughput, round trip, CPU per task, and makespan of stealing vs plain consumers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, ProofSystem};
use proofline_runtime::store::FsStore;
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_sim::{SimPlugin, Workload};
use proofline_tests::rabbit::RabbitBroker;
use serde_json::json;

use crate::median;

/// Worker processes of one configuration; killed on drop.
pub(crate) struct Workers(Vec<Child>);

impl Workers {
    pub(crate) fn spawn(n: usize, uri: &str, store: &Path, args: &[&str]) -> anyhow::Result<Self> {
        let exe = sibling("proofline-worker")?;
        // Built up in place: on a failed spawn, dropping it kills those already started.
        let mut workers = Self(Vec::new());
        for i in 0..n {
            workers.0.push(
                Command::new(&exe)
                    .args([
                        "--amqp-uri",
                        uri,
                        "--health-addr",
                        "127.0.0.1:0",
                        "--name",
                        &format!("bench-{i}"),
                    ])
                    .arg("--store")
                    .arg(format!("fs:{}", store.display()))
                    .args(args)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .with_context(|| format!("spawning worker {i} of {n} ({})", exe.display()))?,
            );
        }
        std::thread::sleep(Duration::from_millis(1500));
        Ok(workers)
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.0.iter().map(Child::id).collect()
    }

    /// How many of the workers have exited.
    pub(crate) fn exited(&mut self) -> usize {
        self.0.iter_mut().map(Child::try_wait).filter(|w| !matches!(w, Ok(None))).count()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `proofline-worker` built next to this benchmark (`cargo build --release -p proofline-worker`).
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(exe.exists(), "{} not found: cargo build --release -p proofline-worker", exe.display());
    Ok(exe)
}

/// CPU seconds (user + system) used so far by `pid`.
pub(crate) fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// CPU used by the broker's processes, the workers (the two before last) and this
/// process (the leader, last) since a starting point.
struct CpuMeter {
    pids: Vec<u32>,
    before: Vec<f64>,
}

impl CpuMeter {
    fn start(pids: Vec<u32>) -> Self {
        let before = pids.iter().map(|&p| cpu_seconds(p)).collect();
        Self { pids, before }
    }

    fn restart(&self) -> Self {
        Self::start(self.pids.clone())
    }

    /// µs per task since the start: `[broker, leader, workers]`.
    fn per_task(&self, tasks: u32) -> [f64; 3] {
        let used: Vec<f64> = self.pids.iter().zip(&self.before).map(|(&p, b)| cpu_seconds(p) - b).collect();
        let n_broker = used.len() - 3;
        let micros = |secs: f64| secs * 1e6 / f64::from(tasks);
        [
            micros(used[..n_broker].iter().sum()),
            micros(used[n_broker + 2]),
            micros(used[n_broker..n_broker + 2].iter().sum()),
        ]
    }
}

/// Messages published to the broker so far (every queue and exchange), read once the
/// management plugin's counter stops moving (it lags by a few statistics intervals).
fn publishes(broker: &RabbitBroker) -> anyhow::Result<f64> {
    let read = || -> anyhow::Result<f64> {
        let body = tokio::task::block_in_place(|| broker.management_api("GET", "/api/overview"))
            .map_err(|e| anyhow::anyhow!("RabbitMQ management API: {e}"))?;
        let overview: serde_json::Value = serde_json::from_str(&body).context("/api/overview: not JSON")?;
        Ok(overview["message_stats"]["publish"].as_f64().unwrap_or(0.0))
    };
    let mut last = read()?;
    for _ in 0..20 {
        tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(700)));
        let now = read()?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
    anyhow::bail!("the broker's publish counter did not settle in 14 s")
}

/// Processes of the broker node (beam.smp and helpers), found by its data directory
/// or node name on their command lines.
fn broker_pids(broker: &RabbitBroker) -> Vec<u32> {
    let dir = broker.data_dir().display().to_string();
    let short = broker.node().split('@').next().unwrap_or_default().to_owned();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if pid != std::process::id() && (cmdline.contains(&dir) || cmdline.contains(&short)) {
            pids.push(pid);
        }
    }
    pids
}

async fn leader(uri: &str, store: &Path) -> anyhow::Result<Leader> {
    let transport: Arc<dyn Transport> = Arc::new(AmqpTransport::connect(AmqpConfig::new(uri)).await?);
    let store = Arc::new(FsStore::open(store.to_str().unwrap_or("."))?);
    Ok(Leader::start(transport, store, LeaderConfig::default()).await?)
}

async fn prove(leader: &Leader, sim: &SimPlugin, workload: &serde_json::Value) -> anyhow::Result<(f64, u32)> {
    let plan = sim.plan(workload.to_string().as_bytes(), &PlanOptions::default())?;
    let started = Instant::now();
    let out = leader.prove(Arc::new(sim.clone()), plan).await?;
    Ok((started.elapsed().as_secs_f64(), out.stats.segments + out.stats.aggregations))
}

pub(crate) fn scratch() -> anyhow::Result<tempfile::TempDir> {
    // Artifacts on tmpfs when there is one: the store is not what is measured here.
    let shm = Path::new("/dev/shm");
    Ok(if shm.is_dir() { tempfile::tempdir_in(shm)? } else { tempfile::tempdir()? })
}

pub async fn cluster(tasks: u32, reps: usize) -> anyhow::Result<()> {
    // The management plugin's counters give the messages per task.
    let broker = tokio::task::block_in_place(|| RabbitBroker::start_with_management(500));
    let uri = broker.amqp_uri();
    let store = scratch()?;
    let sim = SimPlugin::new();

    println!("## No-op and 1 ms tasks, 2 worker processes (1 lane each)\n");
    println!("| case | tasks | median time | result | CPU per task | broker messages per task |");
    println!("|---|---|---|---|---|---|");
    let workers = Workers::spawn(2, &uri, store.path(), &["--lanes", "1", "--prefetch", "256"])?;
    let leader = leader(&uri, store.path()).await?;
    prove(&leader, &sim, &json!({"tasks": 200, "cost": {"fixed": {"micros": 0}}})).await?; // warm-up
    let mut pids = broker_pids(&broker);
    anyhow::ensure!(!pids.is_empty(), "broker processes not found");
    pids.extend(workers.pids());
    pids.push(std::process::id());
    let published = publishes(&broker)?;
    let cpu = CpuMeter::start(pids);
    let noop = json!({"tasks": tasks, "cost": {"fixed": {"micros": 0}}});
    let mut times = vec![];
    let mut total = 0;
    for _ in 0..reps {
        let (t, n) = prove(&leader, &sim, &noop).await?;
        times.push(t);
        total = n;
    }
    let [b, l, w] = cpu.per_task(total * reps as u32);
    let messages = (publishes(&broker)? - published) / f64::from(total * reps as u32);
    let t = median(&mut times);
    println!(
        "| no-op map+fold | {total} | {:.0} ms | **{:.0} tasks/s** | {:.0} µs = broker {:.0} + leader {:.0} + workers {:.0} | {messages:.3} |",
        t * 1e3,
        f64::from(total) / t,
        b + l + w,
        b,
        l,
        w
    );
    // A small job (start-up and the fold's tail weigh), then paladin's own workload:
    // N = 10,000 with 1 ms folds too, ideal = (2N - 1) x 1 ms / 2 workers. The
    // workers' CPU includes the spinning, so only the broker's and leader's is shown.
    for (n, fold_micros, what) in
        [(1000, 0, "1 ms segments, no-op folds"), (tasks, 1000, "1 ms segments and folds (paladin's case)")]
    {
        let spin = json!({"tasks": n, "cost": {"fixed": {"micros": 1000}}, "work": "spin",
            "aggregate_micros": fold_micros});
        let published = publishes(&broker)?;
        let cpu = cpu.restart();
        let mut times = vec![];
        for _ in 0..reps {
            times.push(prove(&leader, &sim, &spin).await?.0);
        }
        let [b, l, _] = cpu.per_task((2 * n - 1) * reps as u32);
        let messages = (publishes(&broker)? - published) / f64::from((2 * n - 1) * reps as u32);
        let t = median(&mut times);
        let spun = if fold_micros > 0 { 2 * n - 1 } else { n };
        let ideal = f64::from(spun) * 1e-3 / 2.0;
        println!(
            "| {what} | {} | {:.0} ms (ideal {:.0}) | **{:.1}% of ideal** | broker {b:.0} + leader {l:.0} µs | {messages:.3} |",
            2 * n - 1,
            t * 1e3,
            ideal * 1e3,
            100.0 * ideal / t
        );
    }

    // Round trip at low load: one single-segment job at a time.
    let mut rtts = vec![];
    let one = json!({"tasks": 1, "cost": {"fixed": {"micros": 0}}});
    for _ in 0..300 {
        rtts.push(prove(&leader, &sim, &one).await?.0 * 1e3);
    }
    rtts.sort_by(f64::total_cmp);
    println!(
        "\nRound trip at low load (300 sequential one-task jobs: publish → worker → result → fold → wrap): p50 **{:.2} ms**, p99 {:.2} ms.\n",
        rtts[rtts.len() / 2],
        rtts[rtts.len() * 99 / 100]
    );
    drop(leader);
    drop(workers);

    makespan(&uri, store.path(), reps).await
}

async fn makespan(uri: &str, store: &Path, reps: usize) -> anyhow::Result<()> {
    let workload = json!({"tasks": 120, "seed": 5, "work": "sleep",
        "cost": {"heavy_tailed": {"min_micros": 5000, "alpha": 1.2, "max_micros": 400000}}});
    let costs = serde_json::from_value::<Workload>(workload.clone())?.costs().map_err(anyhow::Error::msg)?;
    let total: u64 = costs.iter().sum();
    let longest = *costs.iter().max().unwrap_or(&0);
    let bound = (total as f64 / 3.0).max(longest as f64) / 1e6;
    println!("## Heavy-tailed makespan, 3 worker processes (1 lane each)\n");
    println!(
        "120 sleep tasks, Pareto(alpha 1.2, min 5 ms, cap 400 ms), seed 5: total {:.0} ms, longest {:.0} ms, lower bound {:.0} ms.\n",
        total as f64 / 1e3,
        longest as f64 / 1e3,
        bound * 1e3
    );
    println!("| mode | worker flags | median makespan | makespan / bound | worst of {reps} |");
    println!("|---|---|---|---|---|");
    let modes: [(&str, &[&str]); 3] = [
        ("prefetch-1 competing consumers (paladin-style)", &["--prefetch", "1", "--no-share"]),
        ("prefetch-8, no stealing", &["--prefetch", "8", "--no-share"]),
        ("prefetch-8 + hunger give-back (Proofline default mechanism)", &["--prefetch", "8"]),
    ];
    let sim = SimPlugin::new();
    for (name, flags) in modes {
        let mut args = vec!["--lanes", "1"];
        args.extend_from_slice(flags);
        let workers = Workers::spawn(3, uri, store, &args)?;
        let leader = leader(uri, store).await?;
        let mut times = vec![];
        for _ in 0..reps {
            times.push(prove(&leader, &sim, &workload).await?.0);
        }
        let worst = times.iter().cloned().fold(0.0, f64::max);
        let t = median(&mut times);
        println!(
            "| {name} | `{}` | {:.0} ms | **{:.3}** | {:.3} |",
            args.join(" "),
            t * 1e3,
            t / bound,
            worst / bound
        );
        drop(leader);
        drop(workers);
    }
    Ok(())
}
