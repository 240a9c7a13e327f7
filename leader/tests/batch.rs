//! `proofline-leader batch` as a user runs it, on real blocks and real processes: exit
//! codes, the summary table, proofs that verify, an idempotent re-run, a batch killed
//! mid-way and re-run (nothing lost, nothing proven twice), and a run over RabbitMQ
//! with a `proofline-worker` process.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const LEADER: &str = env!("CARGO_BIN_EXE_proofline-leader");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures").join(name)
}

/// A batch's working directory: its store, `--out` and whatever inputs a test writes.
struct Dir {
    tmp: tempfile::TempDir,
}

impl Dir {
    fn new() -> Self {
        Self { tmp: tempfile::tempdir().unwrap() }
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }
    fn store(&self) -> String {
        format!("fs:{}", self.path("store").display())
    }
    /// `proofline-leader [global] batch --out proofs ARGS`, in this directory.
    fn command(&self, global: &[&str], args: &[&str], envs: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(LEADER);
        cmd.current_dir(self.tmp.path())
            .env("PROOFLINE_STORE", self.store())
            .args(global)
            .args(["batch", "--out", "proofs"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }
    fn batch(&self, global: &[&str], args: &[&str], stdin: &str) -> Output {
        let mut child = self.command(global, args, &[]).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
    fn summary(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.path(&format!("proofs/{name}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The summary table's rows: block -> (state, note).
fn table(log: &str) -> HashMap<String, String> {
    let mut lines = log.lines().skip_while(|l| !(l.starts_with("block ") && l.contains(" state ")));
    assert!(lines.next().is_some(), "no summary table in:\n{log}");
    lines
        .take_while(|l| !l.starts_with("proofline-leader:"))
        .map(|l| {
            let (block, rest) = l.split_once(' ').unwrap();
            (block.to_owned(), rest.trim().to_owned())
        })
        .collect()
}

fn verify(proof: &Path) {
    let out = Command::new(LEADER).args(["verify", proof.to_str().unwrap()]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}: {}", proof.display(), stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("proof verifies"));
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

const HOODI: &str = "1265656-ac77c202";
const MAINNET: &str = "22615247-0497f695";

#[test]
fn real_blocks_and_a_bad_input_then_an_idempotent_rerun() {
    let dir = Dir::new();
    // A directory of blocks (links to the shared fixtures) with a bad one among them,
    // and one more block by path on stdin: the same mainnet block in another format.
    let blocks = dir.path("blocks");
    std::fs::create_dir(&blocks).unwrap();
    std::os::unix::fs::symlink(fixture("mainnet-22615247.canonical.json"), blocks.join("a.json")).unwrap();
    std::os::unix::fs::symlink(fixture("hoodi-1265656.ethrex-replay.json"), blocks.join("b.json")).unwrap();
    std::fs::write(blocks.join("c.json"), b"{\"block\": ").unwrap();
    std::fs::write(blocks.join("notes.txt"), b"not a block").unwrap();
    let stdin = format!("{}\n", fixture("mainnet-22615247.zkpig.json").display());

    let started = Instant::now();
    let out = dir.batch(&[], &["blocks", "-", "--timeline", "timelines"], &stdin);
    let first = started.elapsed();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "a bad input and nothing failed: exit 2\n{log}");
    let rows = table(&log);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[HOODI].starts_with("proven"), "{rows:?}");
    assert!(rows[MAINNET].starts_with("proven"), "{rows:?}");
    let bad = &rows["blocks/c.json"];
    assert!(
        bad.starts_with("bad input") && bad.contains("blocks/c.json") && bad.contains("malformed JSON"),
        "{bad}"
    );
    let dup =
        rows.iter().find(|(k, _)| k.ends_with("mainnet-22615247.zkpig.json")).expect("the zkpig input").1;
    assert!(dup.starts_with("duplicate") && dup.contains("blocks/a.json"), "{dup}");
    assert!(log.contains("1 of 4 inputs were bad input"), "{log}");
    // Chain order, not input order: the hoodi block (1265656) starts before the mainnet
    // block (22615247) although the directory lists the mainnet one first.
    let started =
        |name: &str| log.find(&format!("block={name} job=")).unwrap_or_else(|| panic!("{name}: {log}"));
    assert!(started(HOODI) < started(MAINNET), "{log}");

    // Proofs, summaries and pictures; no job record and no artifact left behind.
    let expected: Vec<String> =
        [HOODI, MAINNET].iter().flat_map(|n| [format!("{n}.json"), format!("{n}.proof")]).collect();
    assert_eq!(files_in(&dir.path("proofs")), expected);
    assert_eq!(files_in(&dir.path("timelines")), [format!("{HOODI}.svg"), format!("{MAINNET}.svg")]);
    assert!(
        files_in(&dir.path("store")).iter().all(|f| !f.starts_with("job-")),
        "{:?}",
        files_in(&dir.path("store"))
    );
    for name in [HOODI, MAINNET] {
        verify(&dir.path(&format!("proofs/{name}.proof")));
        let s = dir.summary(name);
        assert_eq!(s["block"], name);
        assert!(s["job"].as_str().unwrap().starts_with("job-"), "{s}");
        assert_eq!(s["plugin"].as_str().unwrap().split('@').next(), Some("keccak"));
        let segments = s["stats"]["segments"].as_u64().unwrap();
        assert!(segments >= 4, "{s}");
        assert_eq!(s["stats"]["aggregations"].as_u64().unwrap(), segments - 1, "{s}");
        assert_eq!(s["stats"]["resumed_segments"], 0);
        // Every attempt is a bar in the picture, which names the block.
        let svg = std::fs::read_to_string(dir.path(&format!("timelines/{name}.svg"))).unwrap();
        assert!(svg.contains(name), "the picture's title names the block");
        assert_eq!(s["attempts"].as_u64().unwrap(), 2 * segments + s["wasted_attempts"].as_u64().unwrap());
    }
    assert_eq!(dir.summary(HOODI)["input"], "blocks/b.json");

    // The same command again: nothing is proven again, the bad input still counts.
    let before: Vec<Vec<u8>> = [HOODI, MAINNET]
        .iter()
        .map(|n| std::fs::read(dir.path(&format!("proofs/{n}.proof"))).unwrap())
        .collect();
    let started = Instant::now();
    let again = dir.batch(&[], &["blocks", "-", "--timeline", "timelines"], &stdin);
    let second = started.elapsed();
    let log = stderr(&again);
    assert_eq!(again.status.code(), Some(2), "{log}");
    let rows = table(&log);
    assert!(rows[HOODI].starts_with("skipped") && rows[MAINNET].starts_with("skipped"), "{rows:?}");
    assert!(!log.contains("job started") && !log.contains(" proved "), "{log}");
    let after: Vec<Vec<u8>> = [HOODI, MAINNET]
        .iter()
        .map(|n| std::fs::read(dir.path(&format!("proofs/{n}.proof"))).unwrap())
        .collect();
    assert!(before == after, "proofs untouched");
    eprintln!("first run {first:?}, re-run {second:?}");
    assert!(second < first / 3, "the re-run only verifies: {second:?} vs {first:?}");
}

/// A sim block of `tasks` segments of `millis` each; `seed` makes it a different block.
fn sim_block(dir: &Dir, file: &str, tasks: u32, millis: u64, seed: u64) -> String {
    let json = format!(
        r#"{{"tasks": {tasks}, "seed": {seed}, "cost": {{"fixed": {{"micros": {}}}}}, "work": "sleep"}}"#,
        millis * 1000
    );
    std::fs::write(dir.path(file), json).unwrap();
    file.to_owned()
}

/// The segments the journal of `job` in the fs store records as done.
fn journaled(store: &Path, job: &str) -> usize {
    let Ok(entries) = std::fs::read_dir(store.join(job).join("journal")) else { return 0 };
    let mut done = std::collections::HashSet::new();
    for path in entries.map(|e| e.unwrap().path()) {
        if path.extension().is_some_and(|e| e.to_string_lossy().starts_with("tmp-")) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let sealed: Value = serde_json::from_str(&text).unwrap();
        for record in sealed["body"].as_array().unwrap() {
            let task = record["task"].as_str().unwrap();
            if task.starts_with("seg-") {
                done.insert(task.to_owned());
            }
        }
    }
    done.len()
}

fn executions(log: &Path) -> usize {
    std::fs::read_to_string(log).unwrap_or_default().lines().count()
}

#[test]
fn a_killed_batch_rerun_proves_every_block_without_redoing_finished_segments() {
    const TASKS: usize = 16;
    let dir = Dir::new();
    let inputs: Vec<String> =
        (0..3).map(|i| sim_block(&dir, &format!("b{i}.json"), TASKS as u32, 250, i)).collect();
    let exec_log = dir.path("executions");
    let exec_env = [("PROOFLINE_SIM_EXEC_LOG", exec_log.to_str().unwrap())];
    let global = ["--plugin", "sim", "--lanes", "2"];
    // One job at a time, so the kill lands while the second block is half proven.
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.extend(["--max-jobs", "1", "--lease-secs", "3"]);

    let mut first: Child = dir.command(&global, &args, &exec_env).stdin(Stdio::null()).spawn().unwrap();
    let log = first.stderr.take().unwrap();
    let drain = std::thread::spawn(move || std::io::read_to_string(log).unwrap_or_default());
    let until = Instant::now() + Duration::from_secs(90);
    // Wait for one proof, then for the next block's job to be part way.
    let job = loop {
        assert!(Instant::now() < until, "no progress: {:?}", files_in(&dir.path("proofs")));
        let files = files_in(&dir.path("proofs"));
        let proofs = files.iter().filter(|f| f.ends_with(".proof")).count();
        // The next block's record (the first block's goes once its proof is written).
        let unproven = |f: &&String| {
            f.strip_suffix(".job").is_some_and(|stem| !files.contains(&format!("{stem}.proof")))
        };
        if proofs == 1
            && let Some(record) = files.iter().find(unproven)
            && let Ok(job) = std::fs::read_to_string(dir.path(&format!("proofs/{record}")))
            && journaled(&dir.path("store"), job.trim()) >= 4
        {
            break (record.trim_end_matches(".job").to_owned(), job.trim().to_owned());
        }
        assert!(proofs < 2, "the kill came too late");
        std::thread::sleep(Duration::from_millis(20));
    };
    first.kill().unwrap(); // SIGKILL: no cleanup of any kind
    first.wait().unwrap();
    let first_log = drain.join().unwrap();
    let (half_done, job_id) = job;
    let journaled_before = journaled(&dir.path("store"), &job_id);
    assert!(journaled_before < TASKS, "killed mid-job");
    let proven_before: Vec<String> =
        files_in(&dir.path("proofs")).into_iter().filter(|f| f.ends_with(".proof")).collect();
    assert_eq!(proven_before.len(), 1, "{first_log}");
    let executed_before = executions(&exec_log);

    let out = dir.command(&global, &args, &exec_env).stdin(Stdio::null()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let rows = table(&log);
    assert_eq!(rows.len(), 3);
    let skipped = proven_before[0].trim_end_matches(".proof");
    assert!(rows[skipped].starts_with("skipped"), "{rows:?}");
    assert!(
        rows[&half_done].starts_with("proven") && rows[&half_done].contains("resumed"),
        "{rows:?}\n{log}"
    );
    // The resumed job is the recorded one, and it proved only what its journal lacked.
    let s = Dir::summary(&dir, &half_done);
    assert_eq!(s["job"], job_id.as_str(), "{s}");
    assert_eq!(s["stats"]["resumed_segments"].as_u64().unwrap() as usize, journaled_before, "{s}");
    let executed = executions(&exec_log) - executed_before;
    assert_eq!(executed, (TASKS - journaled_before) + TASKS, "rest of the resumed block + the third block");
    for f in files_in(&dir.path("proofs")).iter().filter(|f| f.ends_with(".proof")) {
        verify(&dir.path(&format!("proofs/{f}")));
    }
    assert_eq!(files_in(&dir.path("proofs")).iter().filter(|f| f.ends_with(".proof")).count(), 3);
    assert!(!files_in(&dir.path("proofs")).iter().any(|f| f.ends_with(".job")));

    // A damaged proof does not count as done: it is proven again.
    let damaged = dir.path(&format!("proofs/{skipped}.proof"));
    let mut bytes = std::fs::read(&damaged).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&damaged, bytes).unwrap();
    let out = dir.command(&global, &args, &exec_env).stdin(Stdio::null()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let rows = table(&log);
    assert!(rows[skipped].starts_with("proven"), "{rows:?}");
    assert!(rows[&half_done].starts_with("skipped"), "{rows:?}");
    verify(&damaged);
}

#[test]
fn a_failing_block_is_reported_and_the_others_go_on() {
    let dir = Dir::new();
    let ok = sim_block(&dir, "ok.json", 4, 10, 1);
    std::fs::write(
        dir.path("fails.json"),
        br#"{"tasks": 4, "cost": {"fixed": {"micros": 1000}}, "fail": {"segments": [2], "mode": "permanent"}}"#,
    )
    .unwrap();
    let timelines = dir.path("timelines");
    let timelines = timelines.to_str().unwrap();
    let out =
        dir.batch(&["--plugin", "sim"], &["--timeline", timelines, "fails.json", &ok, "missing.json"], "");
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a failed job outranks bad input: exit 1\n{log}");
    // Both jobs are drawn, the failed one with its failed attempt counted as wasted.
    let pictures = files_in(std::path::Path::new(timelines));
    assert_eq!(pictures.len(), 2, "{pictures:?}");
    let wasted: Vec<bool> = pictures
        .iter()
        .map(|p| {
            std::fs::read_to_string(std::path::Path::new(timelines).join(p)).unwrap().contains("(0 wasted)")
        })
        .collect();
    assert_eq!(wasted.iter().filter(|clean| !**clean).count(), 1, "one picture shows a wasted attempt");
    let rows = table(&log);
    let failed = rows.values().find(|r| r.starts_with("failed")).expect("a failed row");
    assert!(failed.contains("task seg-2 failed") && failed.contains("re-run to resume"), "{failed}");
    assert!(
        rows["missing.json"].starts_with("bad input") && rows["missing.json"].contains("No such file"),
        "{rows:?}"
    );
    assert_eq!(rows.values().filter(|r| r.starts_with("proven")).count(), 1, "{rows:?}");
    // The failed block keeps its job record, so a re-run resumes it.
    let files = files_in(&dir.path("proofs"));
    assert_eq!(files.iter().filter(|f| f.ends_with(".job")).count(), 1, "{files:?}");
    assert_eq!(files.iter().filter(|f| f.ends_with(".proof")).count(), 1, "{files:?}");
}

#[test]
fn over_amqp_with_a_real_worker_process() {
    let worker_bin = Path::new(LEADER).with_file_name("proofline-worker");
    assert!(
        worker_bin.exists(),
        "{} is missing: run `cargo build -p proofline-worker`",
        worker_bin.display()
    );
    let broker = proofline_tests::rabbit::RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let dir = Dir::new();
    let _worker = KillOnDrop(
        Command::new(&worker_bin)
            .args(["--amqp-uri", &uri, "--name", "w1", "--health-addr", "127.0.0.1:0", "--lanes", "2"])
            .args(["--store", &dir.store()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let blocks: Vec<String> = (0..3).map(|i| sim_block(&dir, &format!("s{i}.json"), 6, 20, i)).collect();
    std::fs::write(dir.path("bad.json"), br#"{"tasks": 0, "cost": {"fixed": {"micros": 1}}}"#).unwrap();
    let mut args: Vec<&str> = blocks.iter().map(String::as_str).collect();
    args.push("bad.json");
    let out = dir.batch(&["--plugin", "sim", "--runtime", "amqp", "--amqp-uri", &uri], &args, "");
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{log}");
    let rows = table(&log);
    assert_eq!(rows.values().filter(|r| r.starts_with("proven")).count(), 3, "{rows:?}");
    assert!(
        rows["bad.json"].starts_with("bad input") && rows["bad.json"].contains("tasks must be at least 1"),
        "{rows:?}"
    );
    let proofs: Vec<String> =
        files_in(&dir.path("proofs")).into_iter().filter(|f| f.ends_with(".proof")).collect();
    assert_eq!(proofs.len(), 3);
    for p in proofs {
        verify(&dir.path(&format!("proofs/{p}")));
    }
    drop(broker);
}

#[test]
fn ctrl_c_stops_the_running_jobs_and_a_rerun_resumes_them() {
    let dir = Dir::new();
    let inputs: Vec<String> = (0..2).map(|i| sim_block(&dir, &format!("b{i}.json"), 24, 300, i)).collect();
    let global = ["--plugin", "sim", "--lanes", "2"];
    let mut args: Vec<&str> = inputs.iter().map(String::as_str).collect();
    args.extend(["--max-jobs", "2", "--lease-secs", "3"]);
    let child = dir.command(&global, &args, &[]).stdin(Stdio::null()).spawn().unwrap();
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < until, "no progress");
        let jobs: Vec<String> =
            files_in(&dir.path("proofs")).into_iter().filter(|f| f.ends_with(".job")).collect();
        let progressed = jobs.len() == 2
            && jobs.iter().all(|j| {
                let id = std::fs::read_to_string(dir.path(&format!("proofs/{j}"))).unwrap();
                journaled(&dir.path("store"), id.trim()) >= 2
            });
        if progressed {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let interrupted_at = Instant::now();
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let log = stderr(&out);
    assert!(interrupted_at.elapsed() < Duration::from_secs(15), "stopped promptly");
    assert_eq!(out.status.code(), Some(1), "{log}");
    let rows = table(&log);
    assert_eq!(
        rows.values().filter(|r| r.starts_with("interrupted") && r.contains("re-run to resume")).count(),
        2
    );
    let files = files_in(&dir.path("proofs"));
    assert_eq!(files.iter().filter(|f| f.ends_with(".job")).count(), 2, "job records kept: {files:?}");
    assert!(!files.iter().any(|f| f.ends_with(".proof")), "{files:?}");

    let out = dir.command(&global, &args, &[]).stdin(Stdio::null()).output().unwrap();
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{log}");
    let rows = table(&log);
    assert_eq!(
        rows.values().filter(|r| r.starts_with("proven") && r.contains("resumed")).count(),
        2,
        "{rows:?}"
    );
    for f in files_in(&dir.path("proofs")).iter().filter(|f| f.ends_with(".proof")) {
        verify(&dir.path(&format!("proofs/{f}")));
    }
}

#[test]
fn on_an_s3_store_a_failed_block_is_resumed_by_the_rerun() {
    use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
    let server = S3Server::moto();
    server.create_bucket("proofs");
    let dir = Dir::new();
    let ok = sim_block(&dir, "ok.json", 6, 20, 1);
    // Segment 3 fails on every attempt: the job fails after its other segments are proven.
    let failing = r#"{"tasks": 6, "cost": {"fixed": {"micros": 20000}}, "work": "sleep",
        "fail": {"segments": [3], "mode": "permanent"}}"#;
    std::fs::write(dir.path("flaky.json"), failing).unwrap();
    let endpoint = server.endpoint();
    let global =
        ["--plugin", "sim", "--store", "s3://proofs/batch", "--s3-endpoint", &endpoint, "--s3-path-style"];
    let env = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ];
    let run = |inputs: &[&str]| {
        let mut args = inputs.to_vec();
        args.extend(["--lease-secs", "3"]);
        dir.command(&global, &args, &env).stdin(Stdio::null()).output().unwrap()
    };
    let out = run(&[&ok, "flaky.json"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let rows = table(&log);
    let (failed, _) = rows.iter().find(|(_, r)| r.starts_with("failed")).expect("a failed block");
    let record = std::fs::read_to_string(dir.path(&format!("proofs/{failed}.job"))).unwrap();

    // The re-run resumes the failed job from its journal in S3 (its finished segments
    // are not proven again; the injected failure is permanent, so it fails again), and
    // skips the proven block.
    let out = run(&[&ok, "flaky.json"]);
    let log = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let rows = table(&log);
    assert!(rows[failed].starts_with("failed"), "{rows:?}");
    let resumed = log
        .lines()
        .find(|l| l.contains("resuming:") && l.contains(record.trim()))
        .unwrap_or_else(|| panic!("the recorded job {record} was not resumed: {log}"));
    let finished: u32 =
        resumed.split("finished_tasks=").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    assert!(finished >= 1, "the journal in S3 had the finished segments: {resumed}");
    assert!(rows.values().any(|r| r.starts_with("skipped")), "{rows:?}");
    let proofs: Vec<String> =
        files_in(&dir.path("proofs")).into_iter().filter(|f| f.ends_with(".proof")).collect();
    assert_eq!(proofs.len(), 1);
    verify(&dir.path(&format!("proofs/{}", proofs[0])));
}

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
