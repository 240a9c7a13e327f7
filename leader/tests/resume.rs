//! A leader killed mid-job and resumed: the job completes, and no segment whose result
//! the journal recorded is proven again.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SEGMENTS: usize = 30;

fn journaled_segments(store: &Path, job: &str) -> HashSet<String> {
    let mut done = HashSet::new();
    let Ok(entries) = std::fs::read_dir(store.join(job).join("journal")) else { return done };
    for entry in entries {
        let path = entry.unwrap().path();
        // The store writes a temporary file and renames it into place: a temporary one
        // may be half-written, or gone by the time it is read.
        if path.extension().is_some_and(|ext| ext.to_string_lossy().starts_with("tmp-")) {
            continue;
        }
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let sealed: serde_json::Value = serde_json::from_str(&text).unwrap();
        for record in sealed["body"].as_array().unwrap() {
            let task = record["task"].as_str().unwrap();
            if task.starts_with("seg-") {
                done.insert(task.to_owned());
            }
        }
    }
    done
}

fn executions(log: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        *counts.entry(line.to_owned()).or_default() += 1;
    }
    counts
}

/// Hand `workload` to a `stdio` leader; its job id, from the log line that says how to
/// resume (the rest of the log is drained).
fn start_job(leader: &mut Child, workload: &str) -> String {
    leader.stdin.take().unwrap().write_all(workload.as_bytes()).unwrap();
    let mut lines = BufReader::new(leader.stderr.take().unwrap()).lines();
    let job = loop {
        let line = lines.next().expect("leader log ended early").unwrap();
        if let Some(rest) = line.split("--resume ").nth(1) {
            break rest.split(')').next().unwrap().trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    job
}

/// SIGKILL `leader` (no cleanup of any kind) once its journal records `segments`.
fn kill_after(leader: &mut Child, store: &Path, job: &str, segments: usize) {
    let until = Instant::now() + Duration::from_secs(300);
    while journaled_segments(store, job).len() < segments {
        assert!(Instant::now() < until, "no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    leader.kill().unwrap();
    leader.wait().unwrap();
}

#[test]
fn a_killed_leader_resumes_without_proving_finished_segments_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let exec_log = dir.path().join("executions");
    let leader = env!("CARGO_BIN_EXE_proofline-leader");
    let common = ["--plugin", "sim", "--lanes", "2", "--store"];
    let store_spec = format!("fs:{}", store.display());

    let mut first = Command::new(leader)
        .args(common)
        .arg(&store_spec)
        .arg("stdio")
        // A killed leader's lease blocks the resume until it lapses: keep it short.
        .args(["--lease-secs", "3"])
        .env("PROOFLINE_SIM_EXEC_LOG", &exec_log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let workload =
        format!(r#"{{"tasks": {SEGMENTS}, "cost": {{"fixed": {{"micros": 150000}}}}, "work": "sleep"}}"#);
    let job = start_job(&mut first, &workload);
    kill_after(&mut first, &store, &job, 8);
    let journaled = journaled_segments(&store, &job);
    let before = executions(&exec_log);
    assert!(journaled.len() < SEGMENTS, "killed mid-job");

    let resumed = Command::new(leader)
        .args(common)
        .arg(&store_spec)
        .args(["stdio", "--resume", &job])
        .env("PROOFLINE_SIM_EXEC_LOG", &exec_log)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("resumed_segments={}", journaled.len())), "{stderr}");

    let after = executions(&exec_log);
    for i in 0..SEGMENTS {
        let seg = format!("seg-{i}");
        let ran_before = before.get(&seg).copied().unwrap_or(0);
        let ran_after = after.get(&seg).copied().unwrap_or(0) - ran_before;
        if journaled.contains(&seg) {
            assert_eq!(ran_after, 0, "{seg} was recorded as done but proven again");
        } else {
            assert_eq!(ran_after, 1, "{seg} was missing and must be proven exactly once on resume");
        }
    }
    // The resumed proof verifies.
    let proof = dir.path().join("job.proof");
    std::fs::write(&proof, &resumed.stdout).unwrap();
    let verify = Command::new(leader).args(["verify", proof.to_str().unwrap()]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stderr));
    // A proven job leaves nothing behind.
    assert!(!store.join(&job).exists());
}

#[test]
fn resuming_an_unknown_job_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proofline-leader"))
        .args(["--store", &format!("fs:{}", dir.path().display()), "stdio", "--resume", "job-1-abcdef12"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("job job-1-abcdef12 has no manifest"), "{stderr}");
    // Looking leaves nothing behind (no lease for a job that does not exist).
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_plan_larger_than_one_manifest_part_resumes_page_by_page() {
    // 70,000 segments: three parts of the manifest (32,768 each), so the leader holds
    // pages and reads them back, on the first run and on the resume.
    const LARGE: usize = 70_000;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let leader = env!("CARGO_BIN_EXE_proofline-leader");
    let store_spec = format!("fs:{}", store.display());
    let common = ["--plugin", "sim", "--lanes", "2", "--store", &store_spec];
    let mut first = Command::new(leader)
        .args(common)
        .args(["stdio", "--lease-secs", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wrap reads every leaf back (from the journal: the leader holds none of them).
    let workload =
        format!(r#"{{"tasks": {LARGE}, "cost": {{"fixed": {{"micros": 0}}}}, "wrap_reads_leaves": true}}"#);
    let job = start_job(&mut first, &workload);
    // Past the first page, so the resume starts on pages the first run let go.
    kill_after(&mut first, &store, &job, 40_000);
    let parts = std::fs::read_dir(store.join(&job).join("segments")).unwrap().count();
    assert_eq!(parts, 3, "the plan is stored in three parts");
    let journaled = journaled_segments(&store, &job).len();
    assert!(journaled < LARGE, "killed mid-job");

    let resumed = Command::new(leader)
        .args(common)
        .args(["stdio", "--resume", &job])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&format!("resumed_segments={journaled}")), "{stderr}");
    let proof = dir.path().join("job.proof");
    std::fs::write(&proof, &resumed.stdout).unwrap();
    let verify = Command::new(leader).args(["verify", proof.to_str().unwrap()]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{}", String::from_utf8_lossy(&verify.stderr));
}
