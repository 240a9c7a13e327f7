//! A leader interrupted mid-job (Ctrl-C) over a real RabbitMQ, then resumed against
//! the same long-lived workers: the resumed run is a new run, so the workers that
//! remember the cancelled one still run its tasks, and the job completes.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::WorkerProcess;
use proofline_tests::rabbit::RabbitBroker;

/// `proofline-leader`, built next to this crate's binary by `cargo test --workspace`.
/// Start `proofline-leader ARGS` (logging at info) and feed `workload` to its stdin.
fn spawn_leader(args: &[&str], workload: &[u8]) -> std::process::Child {
    let mut child = Command::new(leader_binary())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), workload).unwrap();
    child
}

fn leader_binary() -> std::path::PathBuf {
    let worker = std::path::Path::new(env!("CARGO_BIN_EXE_proofline-worker"));
    let leader = worker.with_file_name("proofline-leader");
    assert!(
        leader.exists(),
        "{} is missing: run `cargo build -p proofline-leader` (or test the whole workspace)",
        leader.display()
    );
    leader
}

/// Journal entries the leader wrote (each records at least one finished task).
fn journal_entries(store: &std::path::Path, job: &str) -> usize {
    std::fs::read_dir(store.join(job).join("journal")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn an_interrupted_job_resumes_on_the_same_workers() {
    let broker = RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let worker = WorkerProcess::spawn("w1", &uri, &store, &["--lanes", "2"]);

    let leader = leader_binary();
    let leader = leader.as_path();
    let store_spec = format!("fs:{}", store.display());
    // Short deadlines: a worker that wrongly skips the resumed run's tasks fails the
    // job in seconds instead of hanging it.
    let common = ["--runtime", "amqp", "--amqp-uri", &uri, "--plugin", "sim", "--store", &store_spec];
    let deadlines = ["--task-deadline-secs", "6", "--max-attempts", "2", "--lease-secs", "3"];
    let workload = br#"{"tasks": 24, "cost": {"fixed": {"micros": 400000}}, "work": "sleep"}"#;
    let mut first = spawn_leader(&[&common[..], &["stdio"], &deadlines[..]].concat(), workload);
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let mut job = None;
    let mut line = String::new();
    while job.is_none() && stderr.read_line(&mut line).unwrap() > 0 {
        job = line
            .split("--resume ")
            .nth(1)
            .map(|j| j.split_whitespace().next().unwrap().trim_end_matches(')').to_owned());
        line.clear();
    }
    let job = job.expect("the leader prints its job id");
    // Wait for some finished work, so the resumed run starts part-way.
    let until = Instant::now() + Duration::from_secs(60);
    while journal_entries(&store, &job) < 3 {
        assert!(Instant::now() < until, "no progress; worker log:\n{}", worker.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-INT", &first.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let exit = first.wait().unwrap();
    assert_eq!(exit.code(), Some(1), "{rest}");
    assert!(rest.contains(&format!("--resume {job}")), "{rest}");

    let resumed = Command::new(leader)
        .args(common)
        .arg("stdio")
        .args(deadlines)
        .args(["--resume", &job])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}\nworker:\n{}", worker.log());
    assert!(!resumed.stdout.is_empty());
    let resumed_segments: u32 = stderr
        .split("resumed_segments=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the proved line reports resumed segments");
    assert!(resumed_segments >= 1, "{stderr}");
    assert_eq!(
        Command::new(leader)
            .args(["verify", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                std::io::Write::write_all(&mut c.stdin.take().unwrap(), &resumed.stdout)?;
                c.wait()
            })
            .unwrap()
            .code(),
        Some(0)
    );
}

#[test]
fn a_leader_whose_broker_stays_away_fails_its_job_resumably() {
    let mut broker = RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let dir = tempfile::tempdir().unwrap();
    let store_spec = format!("fs:{}", dir.path().display());
    // No worker: the job waits for one, then the broker goes away for good.
    let args = ["--runtime", "amqp", "--amqp-uri", &uri, "--plugin", "sim", "--store", &store_spec];
    let workload = br#"{"tasks": 4, "cost": {"fixed": {"micros": 1000}}}"#;
    let mut leader = spawn_leader(&[&args[..], &["--broker-give-up-secs", "3", "stdio"]].concat(), workload);
    let mut stderr = BufReader::new(leader.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("job started") {
        assert!(stderr.read_line(&mut seen).unwrap() > 0, "{seen}");
    }
    broker.stop();
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = leader.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "the leader hangs after its broker is gone");
        std::thread::sleep(Duration::from_millis(100));
    };
    stderr.read_to_string(&mut seen).unwrap();
    assert_eq!(status.code(), Some(1), "{seen}");
    assert!(seen.contains("--resume job-"), "{seen}");
    assert!(seen.contains("127.0.0.1"), "names the broker: {seen}");
    assert!(!seen.contains("guest:guest"), "never the credentials: {seen}");
}
