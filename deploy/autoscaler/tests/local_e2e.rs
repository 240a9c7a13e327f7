//! End to end on the `local` backend, all real: a RabbitMQ broker, a `proofline-leader
//! serve` (keccak, AMQP runtime, fs store) with six real blocks and no worker at all,
//! and `proofline-autoscaler --backend local` starting and stopping real
//! `proofline-worker` processes.
//!
//! 1. Six blocks (the mainnet and Hoodi fixtures and the example) arrive at a system
//!    with zero workers; the autoscaler's per-worker rate is set from the leader's
//!    outstanding cost so that the pool starts at three workers and shrinks as the work
//!    drains, i.e. workers are stopped while jobs still run.
//! 2. Workers go 0 -> N; every proof downloads and verifies.
//! 3. Nothing was lost or waited for: no task failed or was retried, none was
//!    re-dispatched after a silent worker or a timeout (a killed busy worker would
//!    cause one of these), and no worker was stopped while holding work.
//! 4. With no work left, the pool goes back to zero and every worker exits.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proofline_tests::process::LoggedChild;
use proofline_tests::prometheus::workspace_binary;
use proofline_tests::rabbit::RabbitBroker;

const AUTOSCALER: &str = env!("CARGO_BIN_EXE_proofline-autoscaler");
const MAX_WORKERS: u32 = 3;
const DRAIN_SECS: f64 = 20.0;

/// `METHOD path` over HTTP/1.1: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(&[head.as_bytes(), body].concat()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, raw[end + 4..].to_vec())
}

fn json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http(addr, "GET", path, b"");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// The value of the exact series `series` (name and labels) in an exposition.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split_whitespace().next()?.parse().ok())
}

fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http(addr, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn blocks() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let fixtures = repo.join("../shared/fixtures");
    let example = repo.join("examples/example-block.json");
    vec![
        fixtures.join("mainnet-22615247.canonical.json"),
        fixtures.join("mainnet-22615247.zkpig.json"),
        fixtures.join("hoodi-1265656.ethrex-replay.json"),
        example.clone(),
        example.clone(),
        example,
    ]
}

#[test]
fn real_blocks_scale_workers_from_zero_and_back_without_losing_work() {
    let broker = RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("fs:{}", dir.path().join("store").display());
    let leader = LoggedChild::spawn(
        Command::new(workspace_binary("proofline-leader"))
            .args(["--runtime", "amqp", "--amqp-uri", &uri, "--store", &store, "--plugin", "keccak"])
            .args(["serve", "--listen", "127.0.0.1:0", "--max-jobs", "6"])
            .env_remove("PROOFLINE_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );
    let line = leader.wait_for_line("listening on http://", Duration::from_secs(60));
    let api: SocketAddr = line
        .split("listening on http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // 1. Six blocks, no worker: they are planned and wait.
    let started = Instant::now();
    let ids: Vec<String> = blocks()
        .iter()
        .map(|b| {
            let (status, body) = http(api, "POST", "/v1/jobs", &std::fs::read(b).unwrap());
            assert_eq!(status, 202, "{}: {}", b.display(), String::from_utf8_lossy(&body));
            serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let cost = wait_for_planned_cost(api, ids.len());
    let rate = cost / (f64::from(MAX_WORKERS) * DRAIN_SECS);

    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let autoscaler = LoggedChild::spawn(
        Command::new(AUTOSCALER)
            .args(["--backend", "local", "--max-workers", &MAX_WORKERS.to_string()])
            .args(["--worker-rate", &rate.to_string(), "--leader-metrics", &format!("http://{api}/metrics")])
            .args(["--interval-secs", "0.5", "--target-drain-secs", &DRAIN_SECS.to_string()])
            .args([
                "--scale-down-delay-secs",
                "2",
                "--idle-to-zero-secs",
                "4",
                "--listen",
                &listen.to_string(),
            ])
            .args(["--worker-bin", workspace_binary("proofline-worker").to_str().unwrap()])
            .args(["--", "--amqp-uri", &uri, "--store", &store, "--lanes", "1", "--gpu", "off"])
            .stdin(Stdio::null())
            .stdout(Stdio::null()),
    );

    // 2. Workers come, every block is proven.
    let (mut most, mut worker_seconds, mut stops_mid_job) = (0.0f64, 0.0, 0usize);
    let mut pending = ids.clone();
    let until = Instant::now() + Duration::from_secs(1200);
    while !pending.is_empty() {
        assert!(Instant::now() < until, "not proven in time; autoscaler log:\n{}", autoscaler.log());
        std::thread::sleep(Duration::from_millis(500));
        let actual = metric(&scrape(listen), r#"proofline_autoscaler_replicas{pool="local",kind="actual"}"#)
            .unwrap_or(0.0);
        most = most.max(actual);
        worker_seconds += actual * 0.5;
        pending.retain(|id| {
            let state = json(api, &format!("/v1/jobs/{id}"))["state"].as_str().unwrap().to_owned();
            assert!(
                state != "failed" && state != "cancelled",
                "job {id} {state}; leader log:\n{}",
                leader.log()
            );
            state != "proven"
        });
        if !pending.is_empty() {
            stops_mid_job = autoscaler.log().matches("stopping a worker").count();
        }
    }
    let makespan = started.elapsed();
    assert!(most >= 2.0, "the pool grew from zero to {most} workers");
    assert!(stops_mid_job >= 1, "no worker was stopped while jobs ran; log:\n{}", autoscaler.log());
    for id in &ids {
        let (status, proof) = http(api, "GET", &format!("/v1/jobs/{id}/proof"), b"");
        assert_eq!(status, 200);
        let file = dir.path().join(format!("{id}.proof"));
        std::fs::write(&file, proof).unwrap();
        let verified =
            Command::new(workspace_binary("proofline-leader")).arg("verify").arg(&file).output().unwrap();
        assert!(verified.status.success(), "{id}: {}", String::from_utf8_lossy(&verified.stderr));
    }

    // 3. Nothing lost, nothing waited for.
    let leader_metrics = scrape(api);
    for series in [
        r#"proofline_task_redispatches_total{reason="silent"}"#,
        r#"proofline_task_redispatches_total{reason="timeout"}"#,
        r#"proofline_task_retries_total"#,
    ] {
        assert_eq!(metric(&leader_metrics, series), Some(0.0), "{series}:\n{leader_metrics}");
    }
    let spared = metric(&scrape(listen), r#"proofline_autoscaler_busy_spared_total{pool="local"}"#);

    // 4. Back to zero: every worker exits.
    let until = Instant::now() + Duration::from_secs(90);
    loop {
        let log = autoscaler.log();
        let (started_n, exited) =
            (log.matches("started a worker").count(), log.matches("a worker exited").count());
        let actual = metric(&scrape(listen), r#"proofline_autoscaler_replicas{pool="local",kind="actual"}"#);
        if actual == Some(0.0) && started_n == exited {
            assert!(started_n >= 2);
            break;
        }
        assert!(Instant::now() < until, "not back to zero ({started_n} started, {exited} exited):\n{log}");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(!autoscaler.log().contains("expected=false"), "a worker died unasked:\n{}", autoscaler.log());
    eprintln!(
        "local autoscaling: {} blocks in {:.1} s, {worker_seconds:.0} worker-s, at most {most} workers, \
         {stops_mid_job} stopped while jobs ran, busy spared {spared:?} rounds",
        ids.len(),
        makespan.as_secs_f64()
    );
    drop(autoscaler);
    drop(leader);
    drop(broker);
}

/// Wait until the `jobs` jobs run and their outstanding cost stops changing; returns it.
fn wait_for_planned_cost(api: SocketAddr, jobs: usize) -> f64 {
    let until = Instant::now() + Duration::from_secs(300);
    let mut last = -1.0;
    loop {
        let text = scrape(api);
        let running = metric(&text, r#"proofline_jobs{state="running"}"#).unwrap_or(0.0);
        let cost = metric(&text, r#"proofline_outstanding_cost{state="ready"}"#).unwrap_or(0.0)
            + metric(&text, r#"proofline_outstanding_cost{state="dispatched"}"#).unwrap_or(0.0);
        if running == jobs as f64 && cost > 0.0 && cost == last {
            return cost;
        }
        assert!(Instant::now() < until, "jobs never all planned:\n{text}");
        last = cost;
        std::thread::sleep(Duration::from_millis(1000));
    }
}
