//! Scale: N real `proofline-worker` processes (1 lane each) against one private
//! RabbitMQ, for several N, each with stealing on (the default) and off (`--no-share`
//! on every worker). The broker runs with its management plugin (loopback only), whose
//! counters say what the broker handled.
//!
//! For each N and mode:
//!
//! 1. Spawn N workers at once (`--lanes 1 --gpu off`), then poll the management API
//!    until the task queue has N consumers: "all connected" is the time from the first
//!    spawn to that moment (gives up after `--spawn-timeout-secs`).
//! 2. Let them idle for `--idle-secs`: the broker's deliveries and publishes per second
//!    (all of them control traffic: no job runs) and its CPU (a hunger storm shows here).
//! 3. Connect a leader (AMQP connect + `Leader::start`) while the workers idle, timed,
//!    with a timeout (`--connect-timeout-secs`). Then a one-task job warms the path.
//! 4. Snapshot: CPU time (`/proc/PID/stat` utime + stime) of the broker's Erlang VM,
//!    of every worker and of this process (the leader); busy time of the machine
//!    (`/proc/stat`); the broker's message counters (`/api/overview` deliveries,
//!    `/api/queues` deliveries and redeliveries per queue).
//! 5. Run one sim job: S segments that sleep `--sleep-ms` each (S = N x
//!    `--segments-per-worker`, or `--segments`), aggregations that sleep
//!    `--aggregate-ms` (default 0: no-op), timed from submission to proof, with a
//!    timeout (`--job-timeout-secs`; on timeout the progress is reported and the job
//!    cancelled).
//! 6. Snapshot again (CPU at once; broker counters once the job's task and result
//!    deliveries stop changing in them: the broker publishes its statistics every
//!    [`STATS_MS`] and they lag behind by a few intervals), then idle `--idle-secs` more
//!    with the leader connected and snapshot a third time: the counters' window is
//!    longer than the job, so that idle rate times the difference is subtracted.
//!    Per task = per segment or aggregation (2S - 1 tasks). Control deliveries =
//!    deliveries from every queue other than the task queue and the result queues
//!    (control broadcasts, hunger reports, directed give-backs: whatever the stealing
//!    uses). Without stealing a task costs about 2 deliveries and 2 publishes (the
//!    task and its result). Give-backs = redeliveries from the task queue.
//!    Ideal = S x sleep / N + (S - 1) x aggregate / N + ceil(log2 S) x aggregate (the
//!    fold's critical path; with no-op aggregations, S x sleep / N).
//! 7. Close the leader, kill the workers, purge the task queue, wait until it has no
//!    consumers, next.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use proofline_runtime::leader::{Leader, LeaderConfig};
use proofline_runtime::plugin::{PlanOptions, ProofSystem};
use proofline_runtime::store::FsStore;
use proofline_runtime::task::RESULTS_QUEUE_PREFIX;
use proofline_runtime::transport::{AmqpConfig, AmqpTransport, Transport};
use proofline_sim::SimPlugin;
use proofline_tests::rabbit::RabbitBroker;
use serde_json::{Value, json};

use crate::amqp::{Workers, cpu_seconds, scratch};

/// The broker's statistics interval (RabbitMQ's default is 5 s).
const STATS_MS: u64 = 500;
/// The task queue under the default prefix.
const TASK_QUEUE: &str = "proofline.tasks";

/// What `proofline-bench scale` runs.
#[derive(clap::Args)]
pub struct Scale {
    /// Worker counts to run.
    #[arg(long, value_delimiter = ',', default_value = "30,100,200")]
    pub workers: Vec<usize>,
    /// Segments per worker: the job has N x this many (unless --segments).
    #[arg(long, default_value_t = 50)]
    pub segments_per_worker: u32,
    /// Segments of every job, whatever N.
    #[arg(long)]
    pub segments: Option<u32>,
    /// Sleep of each segment, in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub sleep_ms: u64,
    /// Sleep of each aggregation, in milliseconds (0: no-op).
    #[arg(long, default_value_t = 0)]
    pub aggregate_ms: u64,
    /// Seconds all workers idle (connected, no job) before the leader connects.
    #[arg(long, default_value_t = 3)]
    pub idle_secs: u64,
    /// Most seconds from spawning the workers to all of them consuming.
    #[arg(long, default_value_t = 120)]
    pub spawn_timeout_secs: u64,
    /// Most seconds for the leader to connect.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout_secs: u64,
    /// Most seconds for the job (then its progress is reported and it is cancelled).
    #[arg(long, default_value_t = 120)]
    pub job_timeout_secs: u64,
    /// Only the default (stealing) rows, not the `--no-share` ones.
    #[arg(long)]
    pub skip_no_share: bool,
}

/// One row of the table.
struct Row {
    n: usize,
    share: bool,
    segments: u32,
    connected: Result<f64, String>,
    /// While idle, before the leader connects: broker deliveries and publishes per
    /// second, broker CPU (share of one core).
    idle: Option<(f64, f64, f64)>,
    connect: Result<f64, String>,
    job: Result<Job, String>,
}

/// What one job measured.
struct Job {
    makespan: f64,
    ideal: f64,
    tasks: f64,
    broker_cpu: f64,
    leader_cpu: f64,
    workers_cpu: f64,
    deliveries: f64,
    publishes: f64,
    control: f64,
    give_backs: f64,
    machine_busy: f64,
}

/// The broker's message counters at one moment.
#[derive(Clone, Copy, Default)]
struct Counters {
    deliveries: f64,
    publishes: f64,
    control: f64,
    task_redeliveries: f64,
    /// Deliveries from the task and result queues (the job's own traffic).
    work: f64,
}

impl Counters {
    fn minus(self, before: Self) -> Self {
        Self {
            deliveries: self.deliveries - before.deliveries,
            publishes: self.publishes - before.publishes,
            control: self.control - before.control,
            task_redeliveries: self.task_redeliveries - before.task_redeliveries,
            work: self.work - before.work,
        }
    }
}

/// CPU seconds of the broker, the workers and this process, and the machine's busy
/// and total jiffies, at one moment.
struct Cpu {
    broker: f64,
    workers: f64,
    leader: f64,
    busy: f64,
    total: f64,
}

impl Cpu {
    fn now(broker: u32, workers: &[u32]) -> Self {
        let (busy, total) = machine_jiffies();
        Self {
            broker: cpu_seconds(broker),
            workers: workers.iter().map(|&p| cpu_seconds(p)).sum(),
            leader: cpu_seconds(std::process::id()),
            busy,
            total,
        }
    }
}

/// Busy and total jiffies of all CPUs (`/proc/stat`, first line; idle + iowait are idle).
fn machine_jiffies() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<f64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3).copied().unwrap_or(0.0) + fields.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

/// The management API, parsed (blocking; called through `block_in_place`).
fn api(broker: &RabbitBroker, method: &str, path: &str) -> anyhow::Result<Value> {
    let body = tokio::task::block_in_place(|| broker.management_api(method, path))
        .map_err(|e| anyhow::anyhow!("RabbitMQ management API: {e}"))?;
    if body.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&body).with_context(|| format!("{method} {path}: not JSON: {body:.200}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn counters(broker: &RabbitBroker) -> anyhow::Result<Counters> {
    let overview = api(broker, "GET", "/api/overview")?;
    let queues = api(broker, "GET", "/api/queues/%2f?columns=name,message_stats")?;
    let stats = &overview["message_stats"];
    let mut c = Counters {
        deliveries: num(&stats["deliver_get"]),
        publishes: num(&stats["publish"]),
        ..Counters::default()
    };
    for q in queues.as_array().context("/api/queues: not a list")? {
        let name = q["name"].as_str().unwrap_or_default();
        let stats = &q["message_stats"];
        if name == TASK_QUEUE {
            c.task_redeliveries = num(&stats["redeliver"]);
            c.work += num(&stats["deliver_get"]);
        } else if name.starts_with(RESULTS_QUEUE_PREFIX) {
            c.work += num(&stats["deliver_get"]);
        } else {
            c.control += num(&stats["deliver_get"]);
        }
    }
    Ok(c)
}

/// Consumers on the task queue (0 while it does not exist yet).
fn task_consumers(broker: &RabbitBroker) -> anyhow::Result<usize> {
    match tokio::task::block_in_place(|| broker.management_api("GET", "/api/queues/%2f/proofline.tasks")) {
        Ok(body) => {
            let q: Value = serde_json::from_str(&body).context("the task queue's stats: not JSON")?;
            Ok(num(&q["consumers"]) as usize)
        }
        Err(e) if e.contains("HTTP 404") => Ok(0),
        Err(e) => Err(anyhow::anyhow!("RabbitMQ management API: {e}")),
    }
}

fn sleep(d: Duration) {
    tokio::task::block_in_place(|| std::thread::sleep(d));
}

pub async fn scale(cfg: Scale) -> anyhow::Result<()> {
    let broker = tokio::task::block_in_place(|| RabbitBroker::start_with_management(STATS_MS));
    let beam = broker.pid().context("the broker's pid file (mnesia/NODE.pid) is missing")?;
    let uri = broker.amqp_uri();
    let store = scratch()?;
    let version =
        api(&broker, "GET", "/api/overview")?["rabbitmq_version"].as_str().unwrap_or("?").to_owned();
    println!(
        "RabbitMQ {version} (private, management plugin on loopback, statistics every {STATS_MS} ms); \
         workers `--lanes 1 --gpu off`; segments sleep {} ms, aggregations {}; idle {} s before the \
         leader connects.\n",
        cfg.sleep_ms,
        if cfg.aggregate_ms == 0 { "no-op".to_owned() } else { format!("sleep {} ms", cfg.aggregate_ms) },
        cfg.idle_secs
    );
    println!(
        "| N | stealing | segments (+ folds) | all connected | idle: deliveries/s · publishes/s · broker CPU \
         | leader connect | makespan / ideal | broker CPU/task | deliveries/task (control) · publishes/task | give-backs/task \
         | CPU/task leader · workers | machine busy |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &cfg.workers {
        let modes: &[bool] = if cfg.skip_no_share { &[true] } else { &[true, false] };
        for &share in modes {
            let row = run(&cfg, &broker, beam, &uri, store.path(), n, share).await;
            println!("{}", markdown(&row));
            settle(&broker).await;
        }
    }
    Ok(())
}

/// One N, one mode. Failures are recorded in the row, not returned.
async fn run(
    cfg: &Scale,
    broker: &RabbitBroker,
    beam: u32,
    uri: &str,
    store: &Path,
    n: usize,
    share: bool,
) -> Row {
    let segments = cfg.segments.unwrap_or(cfg.segments_per_worker * n as u32).max(1);
    let mut row = Row {
        n,
        share,
        segments,
        connected: Err("not started".into()),
        idle: None,
        connect: Err("not tried".into()),
        job: Err("not run".into()),
    };
    eprintln!("[scale] N = {n}, stealing {}: spawning", if share { "on" } else { "off" });
    let mut args = vec!["--lanes", "1", "--gpu", "off"];
    if !share {
        args.push("--no-share");
    }
    let started = Instant::now();
    let mut workers = match tokio::task::block_in_place(|| Workers::spawn(n, uri, store, &args)) {
        Ok(w) => w,
        Err(e) => {
            row.connected = Err(format!("spawn failed: {e:#}"));
            return row;
        }
    };
    row.connected = wait_connected(broker, &mut workers, n, Duration::from_secs(cfg.spawn_timeout_secs))
        .map(|()| started.elapsed().as_secs_f64());
    if row.connected.is_err() {
        return row;
    }
    let pids = workers.pids();
    eprintln!(
        "[scale] all {n} connected after {:.1} s; idling {} s",
        started.elapsed().as_secs_f64(),
        cfg.idle_secs
    );
    sleep(Duration::from_millis(2 * STATS_MS));
    row.idle = idle_rates(broker, beam, Duration::from_secs(cfg.idle_secs))
        .map(|(c, cpu, secs)| (c.deliveries / secs, c.publishes / secs, cpu / secs))
        .ok();

    let connect_started = Instant::now();
    let connecting =
        tokio::time::timeout(Duration::from_secs(cfg.connect_timeout_secs), connect(uri, store)).await;
    let (amqp, leader) = match connecting {
        Ok(Ok(pair)) => {
            row.connect = Ok(connect_started.elapsed().as_secs_f64());
            pair
        }
        Ok(Err(e)) => {
            row.connect =
                Err(format!("failed after {:.1} s: {e:#}", connect_started.elapsed().as_secs_f64()));
            return row;
        }
        Err(_) => {
            row.connect = Err(format!("no leader after {} s", cfg.connect_timeout_secs));
            return row;
        }
    };
    eprintln!(
        "[scale] leader connected in {:.3} s; running the job",
        connect_started.elapsed().as_secs_f64()
    );
    row.job = job(cfg, broker, beam, &pids, &leader, segments, n).await.map_err(|e| format!("{e:#}"));
    drop(leader);
    amqp.close().await;
    drop(workers);
    row
}

/// Poll the task queue until it has `n` consumers; fail if a worker exits or time runs out.
fn wait_connected(
    broker: &RabbitBroker,
    workers: &mut Workers,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let mut seen = 0;
    loop {
        let exited = workers.exited();
        if exited > 0 {
            return Err(format!("{exited} of {n} workers exited while connecting ({seen} connected)"));
        }
        match task_consumers(broker) {
            Ok(c) if c >= n => return Ok(()),
            Ok(c) => seen = c,
            Err(e) => return Err(format!("{e:#}")),
        }
        if Instant::now() > deadline {
            return Err(format!("only {seen} of {n} connected after {} s", timeout.as_secs()));
        }
        sleep(Duration::from_millis(250));
    }
}

/// The broker's counters once the job's own traffic (task and result deliveries since
/// `before`) has reached `tasks` and stopped changing in them: the statistics lag
/// behind by seconds.
fn settled(broker: &RabbitBroker, before: Counters, tasks: f64) -> anyhow::Result<Counters> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = counters(broker)?;
    loop {
        sleep(Duration::from_millis(2 * STATS_MS));
        let now = counters(broker)?;
        let done = now.work == last.work && now.work - before.work >= tasks;
        if done || Instant::now() > deadline {
            return Ok(now.minus(before));
        }
        last = now;
    }
}

/// The broker's counters and CPU seconds over `window` of idling, and its seconds.
fn idle_rates(broker: &RabbitBroker, beam: u32, window: Duration) -> anyhow::Result<(Counters, f64, f64)> {
    let before = counters(broker)?;
    let cpu = cpu_seconds(beam);
    let t = Instant::now();
    sleep(window);
    let after = counters(broker)?;
    Ok((after.minus(before), cpu_seconds(beam) - cpu, t.elapsed().as_secs_f64()))
}

async fn connect(uri: &str, store: &Path) -> anyhow::Result<(AmqpTransport, Leader)> {
    let amqp = AmqpTransport::connect(AmqpConfig::new(uri)).await.context("AmqpTransport::connect")?;
    let transport: Arc<dyn Transport> = Arc::new(amqp.clone());
    let store = Arc::new(FsStore::open(store.to_str().unwrap_or(".")).context("opening the fs store")?);
    let leader = Leader::start(transport, store, LeaderConfig::default()).await.context("Leader::start")?;
    Ok((amqp, leader))
}

async fn job(
    cfg: &Scale,
    broker: &RabbitBroker,
    beam: u32,
    workers: &[u32],
    leader: &Leader,
    segments: u32,
    n: usize,
) -> anyhow::Result<Job> {
    let sim = SimPlugin::new();
    let warm = json!({"tasks": 1, "cost": {"fixed": {"micros": 0}}});
    let timeout = Duration::from_secs(cfg.job_timeout_secs);
    prove(leader, &sim, &warm, timeout).await.context("warm-up job (1 task)")?;
    let workload = json!({"tasks": segments, "work": "sleep", "aggregate_micros": cfg.aggregate_ms * 1000,
        "cost": {"fixed": {"micros": cfg.sleep_ms * 1000}}});
    let c0 = counters(broker)?;
    let t0 = Instant::now();
    let cpu0 = Cpu::now(beam, workers);
    let makespan = prove(leader, &sim, &workload, timeout).await?;
    let cpu1 = Cpu::now(beam, workers);
    let tasks = f64::from(2 * segments - 1);
    let counted = settled(broker, c0, tasks)?;
    let window = t0.elapsed().as_secs_f64();
    // The counters' window is longer than the job: subtract what the idle pool (leader
    // connected) does in the difference, measured right after.
    let (idle, _, idle_secs) = idle_rates(broker, beam, Duration::from_secs(cfg.idle_secs.max(1)))?;
    let extra = (window - makespan).max(0.0) / idle_secs;
    eprintln!(
        "[scale] job {makespan:.2} s, counter window {window:.2} s: {:.0} deliveries ({:.0} control), \
         {:.0} publishes; then idle {idle_secs:.1} s: {:.0} deliveries, {:.0} publishes",
        counted.deliveries, counted.control, counted.publishes, idle.deliveries, idle.publishes
    );
    let (s, a, lanes) = (cfg.sleep_ms as f64 / 1e3, cfg.aggregate_ms as f64 / 1e3, n as f64);
    let depth = f64::from(segments).log2().ceil();
    let ideal = f64::from(segments) * s / lanes + f64::from(segments - 1) * a / lanes + depth * a;
    Ok(Job {
        makespan,
        ideal,
        tasks,
        broker_cpu: cpu1.broker - cpu0.broker,
        leader_cpu: cpu1.leader - cpu0.leader,
        workers_cpu: cpu1.workers - cpu0.workers,
        deliveries: counted.deliveries - extra * idle.deliveries,
        publishes: counted.publishes - extra * idle.publishes,
        control: counted.control - extra * idle.control,
        give_backs: counted.task_redeliveries,
        machine_busy: (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total).max(1.0),
    })
}

/// Seconds from submission to proof; on timeout, the progress so far (and the job is cancelled).
async fn prove(leader: &Leader, sim: &SimPlugin, workload: &Value, timeout: Duration) -> anyhow::Result<f64> {
    let plan =
        sim.plan(workload.to_string().as_bytes(), &PlanOptions::default()).context("planning the sim job")?;
    let started = Instant::now();
    let handle = leader.submit(Arc::new(sim.clone()), plan).await.context("submitting the sim job")?;
    let progress = handle.progress.clone();
    let canceller = handle.canceller();
    let job = handle.job.clone();
    match tokio::time::timeout(timeout, handle.wait()).await {
        Ok(out) => {
            let out = out.with_context(|| format!("job {job}"))?;
            let secs = started.elapsed().as_secs_f64();
            leader.discard(&out.job).await.with_context(|| format!("discarding job {job}"))?;
            Ok(secs)
        }
        Err(_) => {
            let p = progress.borrow().clone();
            canceller.cancel("scale benchmark: timed out");
            anyhow::bail!(
                "not proven after {} s: {}/{} segments, {}/{} aggregations",
                timeout.as_secs(),
                p.segments_done,
                p.segments_total,
                p.aggregations_done,
                p.aggregations_total
            )
        }
    }
}

/// Between runs: drop leftover tasks, wait until the killed workers' consumers are gone.
async fn settle(broker: &RabbitBroker) {
    if let Err(e) = api(broker, "DELETE", "/api/queues/%2f/proofline.tasks/contents") {
        eprintln!("[scale] could not purge the task queue: {e:#}");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if task_consumers(broker).is_ok_and(|c| c == 0) {
            break;
        }
        sleep(Duration::from_millis(250));
    }
    sleep(Duration::from_secs(1));
}

fn markdown(r: &Row) -> String {
    let mode = if r.share { "on" } else { "off (`--no-share`)" };
    let connected = match &r.connected {
        Ok(s) => format!("{s:.1} s"),
        Err(e) => e.clone(),
    };
    let idle = r.idle.map_or("—".to_owned(), |(delivered, published, cpu)| {
        format!("{delivered:.0} · {published:.0} · {:.0}%", cpu * 100.0)
    });
    let connect = match &r.connect {
        Ok(s) if *s < 1.0 => format!("**{:.0} ms**", s * 1e3),
        Ok(s) => format!("**{s:.2} s**"),
        Err(e) => e.clone(),
    };
    let job = match &r.job {
        Ok(j) => {
            let per = |x: f64| x * 1e6 / j.tasks;
            format!(
                "{:.2} s / {:.2} s = **{:.2}x** | {:.0} µs | {:.2} ({:.2}) · {:.2} | {:.3} | {:.0} · {:.0} µs | {:.0}%",
                j.makespan,
                j.ideal,
                j.makespan / j.ideal,
                per(j.broker_cpu),
                j.deliveries / j.tasks,
                j.control / j.tasks,
                j.publishes / j.tasks,
                j.give_backs / j.tasks,
                per(j.leader_cpu),
                per(j.workers_cpu),
                j.machine_busy * 100.0
            )
        }
        Err(e) => format!("{e} | — | — | — | — | —"),
    };
    format!(
        "| {} | {mode} | {} (+ {}) | {connected} | {idle} | {connect} | {job} |",
        r.n,
        r.segments,
        r.segments - 1
    )
}
