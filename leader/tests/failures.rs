//! Failure paths of a whole job, run as a user runs them: a proof that cannot be
//! written, a hung task, deadlines that would re-dispatch forever.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn leader(store: &Path, args: &[&str], stdin: Stdio, stdout: Stdio) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proofline-leader"))
        .args(["--plugin", "sim", "--lanes", "2", "--store"])
        .arg(format!("fs:{}", store.display()))
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

fn workload(dir: &Path, json: &str) -> Stdio {
    let path = dir.join("workload.json");
    std::fs::write(&path, json).unwrap();
    Stdio::from(std::fs::File::open(path).unwrap())
}

/// The job ids that still have a folder in an fs store.
fn jobs_in(store: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(store) else { return Vec::new() };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("job-"))
        .collect()
}

#[test]
fn a_proof_that_cannot_be_written_keeps_its_job_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let input = workload(dir.path(), r#"{"tasks": 6, "cost": {"fixed": {"micros": 1000}}}"#);
    let out = leader(&store, &["stdio"], input, Stdio::from(full));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("writing the proof to stdout"), "{stderr}");
    // The job is still in the store, and the message says how to get its proof.
    let jobs = jobs_in(&store);
    assert_eq!(jobs.len(), 1, "the job must survive a failed write: {jobs:?}");
    let job = &jobs[0];
    assert!(stderr.contains(&format!("--resume {job}")), "{stderr}");

    let proof = dir.path().join("block.proof");
    let out = leader(
        &store,
        &["stdio", "--resume", job, "--out", proof.to_str().unwrap()],
        Stdio::null(),
        Stdio::null(),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("resumed_segments=6"), "nothing is proven twice: {stderr}");
    let verified =
        Command::new(env!("CARGO_BIN_EXE_proofline-leader")).arg("verify").arg(&proof).output().unwrap();
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    // Written durably, so now (and only now) the job's artifacts are gone.
    assert!(jobs_in(&store).is_empty(), "{:?}", jobs_in(&store));
}

#[test]
fn a_hung_task_with_live_heartbeats_is_abandoned_and_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // Segment 1's first attempt sleeps for an hour; heartbeats keep flowing every 2 s,
    // so only the task timeout can catch it.
    let input = workload(
        dir.path(),
        r#"{"tasks": 4, "cost": {"fixed": {"micros": 1000}}, "work": "sleep",
            "fail": {"segments": [1], "mode": "hang", "times": 1}}"#,
    );
    let out = leader(&store, &["stdio", "--task-timeout-secs", "3"], input, Stdio::piped());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("timeouts=1"), "{stderr}");
    assert!(stderr.contains("redispatches=0"), "heartbeats kept it alive: {stderr}");
    // The worker cancelled the hung attempt (its lane is free again).
    assert!(stderr.contains("abandoning an attempt that ran past its timeout"), "{stderr}");
    assert!(!out.stdout.is_empty());
}

#[test]
fn deadlines_shorter_than_heartbeats_are_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    for args in [&["stdio", "--task-deadline-secs", "1"][..], &["stdio", "--task-timeout-secs", "0"][..]] {
        let input = workload(dir.path(), r#"{"tasks": 2, "cost": {"fixed": {"micros": 1}}}"#);
        let out = leader(&store, args, input, Stdio::piped());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(args[1]), "names the flag: {stderr}");
        assert!(out.stdout.is_empty());
    }
    let out = leader(&store, &["stdio", "--resume", "../docs"], Stdio::null(), Stdio::piped());
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(jobs_in(&store).is_empty());
}
