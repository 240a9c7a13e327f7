//! The exec plugin end to end, all real: `proofline-leader` and `proofline-worker`
//! running `proofline-keccak-prover` (a separate binary speaking docs/EXEC.md) on the
//! example block (cut down to its binding items), embedded and over a real RabbitMQ,
//! and provers that crash, hang, write garbage or are missing.
//!
//! Proofs made through `exec` must be byte for byte the in-process `keccak` plugin's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use proofline_runtime::proof_file::ProofFile;
use proofline_tests::process::{LoggedChild, output_with_stdin};
use proofline_tests::prometheus::workspace_binary;
use proofline_tests::rabbit::RabbitBroker;

fn example() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/example-block.json")).unwrap()
}

/// The example block cut down to what binds it (its header, the parent header and the
/// state root node: 14 Keccak-f), so that proving it thrice costs seconds, not minutes.
fn small_block() -> Vec<u8> {
    let mut block: serde_json::Value = serde_json::from_slice(&example()).unwrap();
    let root = block["parentStateRoot"].as_str().unwrap().to_owned();
    let witness = &mut block["witness"];
    let is_root = |node: &serde_json::Value| {
        let bytes = hex::decode(node.as_str().unwrap().trim_start_matches("0x")).unwrap();
        format!("0x{}", hex::encode(proofline_keccak::sponge::keccak256(&bytes))) == root
    };
    let root_node = witness["state"].as_array().unwrap().iter().find(|n| is_root(n)).unwrap().clone();
    witness["state"] = serde_json::json!([root_node]);
    witness["codes"] = serde_json::json!([]);
    witness["keys"] = serde_json::json!([]);
    serde_json::to_vec(&block).unwrap()
}

/// Five permutations per segment: three segments, two aggregations.
const SEGMENTS: [&str; 2] = ["--segment-size", "5"];

fn prover() -> PathBuf {
    workspace_binary("proofline-keccak-prover")
}

/// `proofline-leader ARGS < stdin` with a fresh fs store.
fn leader(args: &[&str], stdin: &[u8], envs: &[(&str, &str)]) -> Output {
    let store = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(workspace_binary("proofline-leader"));
    cmd.args(args)
        .env("PROOFLINE_STORE", format!("fs:{}", store.path().display()))
        .env("RUST_LOG", "warn")
        .envs(envs.iter().copied());
    output_with_stdin(&mut cmd, stdin)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The proof file `stdio` printed, checked to be one.
fn proof_of(out: &Output) -> ProofFile {
    assert!(out.status.success(), "leader failed: {}", stderr(out));
    ProofFile::decode(&out.stdout).expect("stdout is a proof file")
}

/// The small block proven by the in-process keccak plugin, once per test binary.
fn in_process_proof() -> &'static ProofFile {
    static PROOF: OnceLock<ProofFile> = OnceLock::new();
    PROOF.get_or_init(|| {
        proof_of(&leader(&["stdio", "--plugin", "keccak", SEGMENTS[0], SEGMENTS[1]], &small_block(), &[]))
    })
}

/// A shell-script prover: `body` handles some steps, the rest go to the real prover.
fn script_prover(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    let script = format!("#!/bin/sh\n{body}\nexec '{}' \"$@\"\n", prover().display());
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn an_exec_proof_embedded_is_the_in_process_proof_and_verifies_through_the_binary() {
    let prover = prover();
    let prover = prover.to_str().unwrap();
    let args = ["stdio", "--plugin", "exec", "--exec-prover", prover, SEGMENTS[0], SEGMENTS[1]];
    let out = leader(&args, &small_block(), &[]);
    let proof = proof_of(&out);
    assert!(proof.plugin.starts_with("exec@blake3-"), "{}", proof.plugin);
    assert_eq!(proof.body, in_process_proof().body, "exec and in-process proofs differ");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("block.proof");
    std::fs::write(&file, proof.encode()).unwrap();
    let verify = |args: &[&str]| {
        Command::new(workspace_binary("proofline-leader"))
            .arg("verify")
            .args(args)
            .arg(&file)
            .output()
            .unwrap()
    };
    let ok = verify(&["--exec-prover", prover]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(said.contains("proof verifies: block 22907757 0x17bc6fcc"), "{said}");

    let without = verify(&[]);
    assert_eq!(without.status.code(), Some(2), "{}", stderr(&without));
    assert!(stderr(&without).contains("--exec-prover PATH"), "{}", stderr(&without));

    // A different binary (the same program plus one byte) is another plugin version.
    let other = dir.path().join("other-prover");
    let mut bytes = std::fs::read(prover).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mismatch = verify(&["--exec-prover", other.to_str().unwrap()]);
    assert_eq!(mismatch.status.code(), Some(2), "{}", stderr(&mismatch));
    assert!(stderr(&mismatch).contains(&format!("made by {}", proof.plugin)), "{}", stderr(&mismatch));
}

#[test]
fn over_amqp_workers_run_the_same_binary_and_a_different_one_is_refused_by_name() {
    let broker = RabbitBroker::start_new();
    let store = tempfile::tempdir().unwrap();
    let store_arg = format!("fs:{}", store.path().display());
    let prover = prover();
    let worker = |binary: &Path| {
        LoggedChild::spawn(
            Command::new(workspace_binary("proofline-worker"))
                .args(["--amqp-uri", &broker.amqp_uri(), "--store", &store_arg, "--lanes", "2"])
                .args(["--health-addr", "127.0.0.1:0", "--exec-prover"])
                .arg(binary),
        )
    };
    let leader_amqp = |max_attempts: &str| {
        let mut cmd = Command::new(workspace_binary("proofline-leader"));
        cmd.args(["stdio", "--runtime", "amqp", "--amqp-uri", &broker.amqp_uri(), "--store", &store_arg])
            .args(["--plugin", "exec", "--max-attempts", max_attempts])
            .args(SEGMENTS)
            .arg("--exec-prover")
            .arg(&prover)
            .env("RUST_LOG", "warn");
        output_with_stdin(&mut cmd, &small_block())
    };

    // A worker with another binary refuses the tasks, naming both versions.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-prover");
    let mut bytes = std::fs::read(&prover).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    let wrong = worker(&other);
    wrong.wait_for_line("worker started", Duration::from_secs(60));
    let refused = leader_amqp("1");
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let message = stderr(&refused);
    assert!(message.contains("task needs exec@blake3-") && message.contains("this worker has exec@blake3-"));
    assert!(message.contains("same --exec-prover binary"), "{message}");
    drop(wrong);

    let right = worker(&prover);
    right.wait_for_line("worker started", Duration::from_secs(60));
    let proof = proof_of(&leader_amqp("3"));
    assert_eq!(proof.body, in_process_proof().body, "exec over AMQP and in-process proofs differ");
}

/// Crashes are retried and then named; hangs are killed at the step timeout; garbage
/// is caught by the next step; bad input is exit 2 with the prover's own message.
#[test]
fn provers_that_crash_hang_or_write_garbage_fail_the_job_with_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let run = |prover: &Path, extra: &[&str], input: &[u8]| {
        let mut args = vec!["stdio", "--plugin", "exec", "--exec-prover", prover.to_str().unwrap()];
        args.extend_from_slice(extra);
        leader(&args, input, &[])
    };

    let body = r#"[ "$1" = segment ] && { echo "lane 0: out of device memory" >&2; kill -SEGV $$; }"#;
    let crash = script_prover(dir.path(), "crash", body);
    let out = run(&crash, &["--max-attempts", "2"], &example());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = "exec prover segment was killed by signal 11: lane 0: out of device memory";
    assert!(stderr(&out).contains(said), "the stderr tail is in the failure: {}", stderr(&out));

    let pid_file = dir.path().join("hung.pid");
    let body =
        format!(r#"[ "$1" = segment ] && {{ sleep 600 & echo $! > '{}'; wait; }}"#, pid_file.display());
    let hang = script_prover(dir.path(), "hang", &body);
    let started = std::time::Instant::now();
    let out = run(&hang, &["--max-attempts", "1", "--exec-timeout-secs", "2"], &example());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("ran past its 2s timeout and was killed"), "{}", stderr(&out));
    assert!(started.elapsed() < Duration::from_secs(120), "the hung step was not killed in time");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    assert!(stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z"), "sleep survived: {stat}");

    let garbage = script_prover(
        dir.path(),
        "garbage",
        r#"[ "$1" = segment ] && { head -c 512 /dev/urandom > "$3"; exit 0; }"#,
    );
    let out = run(&garbage, &[], &example());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exec prover aggregate exited with code 1"), "{}", stderr(&out));

    let silent = script_prover(dir.path(), "silent", r#"[ "$1" = segment ] && exit 0"#);
    let out = run(&silent, &[], &example());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("exec prover segment exited 0 but"), "{}", stderr(&out));

    let out = run(&prover(), &[], br#"{"blocks": 3}"#);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("blocks: expected an array"), "{}", stderr(&out));

    let out = run(Path::new("/nonexistent/prover"), &[], &example());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--exec-prover: exec prover /nonexistent/prover: cannot read it"));
}
