//! A real Prometheus scrapes a real cluster during a job: one `proofline-leader`
//! (`--runtime amqp`, sim plugin, `stdio --metrics-addr`) and two `proofline-worker
//! --metrics-addr` processes on a private RabbitMQ. Prometheus (Debian's package, a
//! private server scraping every second) must see all three targets up and the
//! series the dashboard and the autoscaler read, with an instance label per worker;
//! `promtool check metrics` must accept every raw exposition.
//!
//! Needs the binaries: `cargo build -p proofline-leader -p proofline-worker` (or
//! `cargo test --workspace`), then `cargo test -p proofline-tests --test prometheus`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use proofline_tests::process::LoggedChild;
use proofline_tests::prometheus::{
    PrometheusServer, Target, free_port, http_get, promtool_check_metrics, workspace_binary,
};
use proofline_tests::rabbit::RabbitBroker;

/// 48 segments of 1 s (sleeping: no CPU contention on a 2-core machine) on 4 lanes:
/// about 12 s of work, long enough for a dozen scrapes of each target.
// 256-byte artifacts: larger than what travels inline, so workers put them in the store.
const WORKLOAD: &str =
    r#"{"tasks": 48, "cost": {"fixed": {"micros": 1000000}}, "work": "sleep", "artifact_bytes": 256}"#;
const SEGMENTS: f64 = 48.0;
const WORKER_JOB: &str = "proofline-worker";
const LEADER_JOB: &str = "proofline-leader";

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One exposition, straight from a target: served as the text format, accepted by
/// promtool, containing `names`.
fn check_exposition(addr: SocketAddr, names: &[&str]) -> String {
    let (status, head, body) =
        http_get(addr, "/metrics").unwrap_or_else(|e| panic!("GET {addr}/metrics: {e}"));
    assert_eq!(status, 200, "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{head}");
    if let Err(e) = promtool_check_metrics(&body) {
        panic!("{addr}: {e}\nexposition:\n{body}");
    }
    for name in names {
        assert!(body.contains(&format!("\n{name}")), "{addr} does not export {name}:\n{body}");
    }
    // The broker URI of this test carries `guest:guest@`: never a label value.
    assert!(!body.contains("guest") && !body.contains("amqp://"), "{addr}: a broker URI reached /metrics");
    body
}

#[test]
fn prometheus_scrapes_a_leader_and_two_workers_during_a_job() {
    let broker = RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("fs:{}", dir.path().join("store").display());
    let [leader_port, w1_port, w2_port] = [free_port(), free_port(), free_port()];
    let (leader_addr, w1_addr, w2_addr) = (loopback(leader_port), loopback(w1_port), loopback(w2_port));
    let prometheus = PrometheusServer::start(&[
        Target::new(LEADER_JOB, leader_addr),
        Target::new(WORKER_JOB, w1_addr),
        Target::new(WORKER_JOB, w2_addr),
    ]);

    let worker = |name: &str, addr: SocketAddr| {
        let mut cmd = Command::new(workspace_binary("proofline-worker"));
        cmd.args(["--amqp-uri", &uri, "--store", &store, "--name", name, "--lanes", "2", "--gpu", "off"])
            .args(["--health-addr", "127.0.0.1:0", "--metrics-addr", &addr.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let proc = LoggedChild::spawn(&mut cmd);
        proc.wait_for_line(&format!("metrics on http://{addr}/metrics"), Duration::from_secs(30));
        proc
    };
    let w1 = worker("w1", w1_addr);
    let w2 = worker("w2", w2_addr);

    let mut cmd = Command::new(workspace_binary("proofline-leader"));
    cmd.args(["--runtime", "amqp", "--amqp-uri", &uri, "--store", &store, "--plugin", "sim"])
        .args(["--metrics-addr", &leader_addr.to_string(), "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut leader = LoggedChild::spawn(&mut cmd);
    leader.child().stdin.take().unwrap().write_all(WORKLOAD.as_bytes()).unwrap();
    let mut stdout = leader.child().stdout.take().unwrap();
    let proof = std::thread::spawn(move || {
        let mut proof = Vec::new();
        stdout.read_to_end(&mut proof).map(|_| proof)
    });
    leader.wait_for_line(&format!("metrics on http://{leader_addr}/metrics"), Duration::from_secs(30));

    // Raw expositions during the job: the text format, clean for promtool.
    let worker_names =
        ["proofline_worker_tasks_total", "proofline_worker_lanes", "proofline_worker_tasks_held"];
    check_exposition(w1_addr, &worker_names);
    check_exposition(w2_addr, &worker_names);
    check_exposition(leader_addr, &["proofline_outstanding_tasks", "proofline_store_bytes_total"]);

    // Prometheus sees all three targets, both workers' tasks and the leader's
    // outstanding work, while the job runs.
    let until = Instant::now() + Duration::from_secs(60);
    let mut seen_outstanding = 0.0f64;
    let mut utilisation = 0.0f64;
    loop {
        let up: Vec<_> = prometheus.samples("up").into_iter().filter(|(_, v)| *v == 1.0).collect();
        let done = prometheus.samples(&format!(
            "sum by (instance) (proofline_worker_tasks_total{{job=\"{WORKER_JOB}\",outcome=\"done\"}}) > 0"
        ));
        let done_on: BTreeSet<String> =
            done.iter().filter_map(|(l, _)| l.get("instance")?.as_str().map(str::to_owned)).collect();
        let outstanding = prometheus.samples(&format!(
            "sum(proofline_outstanding_tasks{{job=\"{LEADER_JOB}\",instance=\"{leader_addr}\"}})"
        ));
        seen_outstanding = outstanding.iter().map(|(_, v)| *v).fold(seen_outstanding, f64::max);
        let busy = prometheus.samples(
            "sum(rate(proofline_worker_lane_busy_seconds_total{device=\"cpu\"}[5s])) \
             / sum(proofline_worker_lanes{device=\"cpu\"})",
        );
        utilisation = busy.iter().map(|(_, v)| *v).filter(|v| v.is_finite()).fold(utilisation, f64::max);
        let expected: BTreeSet<String> = [w1_addr, w2_addr].iter().map(|a| a.to_string()).collect();
        if up.len() == 3 && done_on == expected && seen_outstanding > 0.0 && utilisation > 0.5 {
            break;
        }
        assert!(
            Instant::now() < until,
            "Prometheus never saw the job: up {up:?}, done on {done_on:?}, outstanding {seen_outstanding}, \
             utilisation {utilisation}\nleader log:\n{}\nprometheus log:\n{}",
            leader.log(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mid_job = leader.running();
    if mid_job {
        // The leader's exposition with a job in flight (histograms filled) is clean too.
        let leader_names =
            ["proofline_outstanding_tasks", "proofline_dispatch_window", "proofline_tasks_total"];
        check_exposition(leader_addr, &leader_names);
    }
    // Both outstanding states are exported by the leader (ready and dispatched).
    let states: BTreeSet<String> = prometheus
        .samples(&format!("proofline_outstanding_cost{{job=\"{LEADER_JOB}\"}}"))
        .iter()
        .filter_map(|(l, _)| l.get("state")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(states, BTreeSet::from(["dispatched".to_owned(), "ready".to_owned()]));

    let status = leader.child().wait().unwrap();
    let proof = proof.join().unwrap().unwrap();
    assert!(status.success(), "leader failed ({status}):\n{}", leader.log());
    assert!(!proof.is_empty(), "no proof on stdout");

    // After the job: every segment and aggregation ran, counted across both workers;
    // the store and queue-wait series were scraped too.
    let until = Instant::now() + Duration::from_secs(15);
    let expected_done = SEGMENTS + (SEGMENTS - 1.0);
    let done = loop {
        let done = prometheus
            .samples("sum(proofline_worker_tasks_total{outcome=\"done\"})")
            .first()
            .map_or(0.0, |(_, v)| *v);
        if done >= expected_done || Instant::now() > until {
            break done;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(done >= expected_done, "{done} tasks done, expected {expected_done}");
    let puts = prometheus.samples(
        "sum by (job) (max_over_time(proofline_store_operation_seconds_count{op=\"put\",store=\"fs\"}[5m]))",
    );
    let put_jobs: BTreeSet<String> = puts
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .filter_map(|(l, _)| l.get("job")?.as_str().map(str::to_owned))
        .collect();
    assert_eq!(put_jobs, BTreeSet::from([LEADER_JOB.to_owned(), WORKER_JOB.to_owned()]), "{puts:?}");
    let wait_p90 = prometheus.samples(
        "histogram_quantile(0.9, sum by (le) (rate(proofline_worker_task_queue_wait_seconds_bucket[1m])))",
    );
    let run_p50 = prometheus.samples(
        "histogram_quantile(0.5, sum by (le) (rate(proofline_worker_task_run_seconds_bucket{kind=\"segment\"}[1m])))",
    );
    let run_p50 = run_p50.first().map_or(f64::NAN, |(_, v)| *v);
    assert!((0.5..=2.5).contains(&run_p50), "median segment run time {run_p50} s (tasks sleep 1 s)");
    // Every query of the Grafana dashboard is valid PromQL for this server, and the
    // worker, store and outstanding-work panels have data.
    let mut with_data = BTreeSet::new();
    for (title, expr) in proofline_tests::dashboard::exprs(&proofline_tests::dashboard::load()) {
        let expr = proofline_tests::dashboard::for_prometheus(&expr, "1m");
        if !prometheus.query(&expr).is_empty() {
            with_data.insert(title);
        }
    }
    for title in
        ["Task throughput by kind and outcome (workers)", "Lane utilisation: CPU vs GPU", "Store throughput"]
    {
        assert!(with_data.contains(title), "panel {title:?} has no data; panels with data: {with_data:?}");
    }
    eprintln!(
        "scraped mid-job: {mid_job}; peak outstanding tasks {seen_outstanding}; peak CPU lane utilisation \
         {utilisation:.2}; segment run p50 {run_p50:.2} s; queue wait p90 {:?}; tasks done {done}",
        wait_p90.first().map(|(_, v)| *v)
    );
    drop((w1, w2));
}
