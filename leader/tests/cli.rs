//! The `proofline-leader` binary as a user runs it: exit codes, messages, and that
//! nothing reaches stdout unless a whole proof does.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

fn leader(args: &[&str], stdin: &[u8]) -> Output {
    common::leader_with(args, stdin, &[])
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Run `stdio` on `input` and insist on a bad-input rejection mentioning `needle`.
fn assert_rejected(input: &[u8], needle: &str) {
    let out = leader(&["stdio"], input);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing may reach stdout on bad input");
    assert!(stderr(&out).contains(needle), "expected {needle:?} in: {}", stderr(&out));
}

fn canonical() -> Value {
    let text = std::fs::read_to_string(fixtures().join("mainnet-22615247.canonical.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn proves_the_example_block_and_verifies_it_and_refuses_tampered_copies() {
    let example = common::example();
    let out = leader(&["stdio"], &example);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let dir = tempfile::tempdir().unwrap();
    let proof = dir.path().join("block.proof");
    std::fs::write(&proof, &out.stdout).unwrap();

    let ok = leader(&["verify", proof.to_str().unwrap()], b"");
    assert_eq!(ok.status.code(), Some(0), "stderr: {}", stderr(&ok));
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(said.contains("proof verifies"), "{said}");

    // A flipped byte in the middle: the file no longer verifies (exit 1).
    let mut tampered = out.stdout.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x01;
    std::fs::write(&proof, &tampered).unwrap();
    let bad = leader(&["verify", proof.to_str().unwrap()], b"");
    assert_eq!(bad.status.code(), Some(1), "stderr: {}", stderr(&bad));
    assert!(stderr(&bad).contains("does not verify"), "{}", stderr(&bad));

    // A truncated file is malformed input (exit 2), and says where it ends.
    std::fs::write(&proof, &out.stdout[..out.stdout.len() / 3]).unwrap();
    let cut = leader(&["verify", proof.to_str().unwrap()], b"");
    assert_eq!(cut.status.code(), Some(2), "stderr: {}", stderr(&cut));
    assert!(stderr(&cut).contains("truncated"), "{}", stderr(&cut));
}

#[test]
fn bad_block_input_is_rejected_with_what_and_where() {
    assert_rejected(b"", "no input on stdin");
    assert_rejected(b"{\"block\": ", "malformed JSON");

    let mut missing = canonical();
    missing["witness"].as_object_mut().unwrap().remove("headers");
    assert_rejected(missing.to_string().as_bytes(), "witness.headers");

    let mut non_hex = canonical();
    non_hex["witness"]["state"][3] = json!("0xzz12");
    assert_rejected(non_hex.to_string().as_bytes(), "witness.state[3]");

    let mut short_hash = canonical();
    short_hash["block"]["hash"] = json!("0x0497f69549701d578c67a43951f9e4fcb92b1691b9f6bbdfa63a17bc41d397");
    assert_rejected(short_hash.to_string().as_bytes(), "block.hash");

    let mut empty = canonical();
    empty["witness"]["state"] = json!([]);
    assert_rejected(empty.to_string().as_bytes(), "empty witness");

    let mut wrong_hash = canonical();
    wrong_hash["block"]["hash"] = json!(format!("0x{}", "11".repeat(32)));
    assert_rejected(wrong_hash.to_string().as_bytes(), "does not hash to the claimed block hash");
}

#[test]
fn unknown_plugins_and_stores_are_bad_input() {
    let out = leader(&["--plugin", "groth17", "stdio"], b"{}");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown plugin \"groth17\""), "{}", stderr(&out));

    let out = leader(
        &["--store", "ftp://nowhere", "--plugin", "sim", "stdio"],
        br#"{"tasks": 2, "cost": {"fixed": {"micros": 0}}}"#,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ftp://nowhere"), "{}", stderr(&out));
}

#[test]
fn a_failing_task_fails_the_job_with_its_name_and_no_output() {
    let workload =
        br#"{"tasks": 4, "cost": {"fixed": {"micros": 0}}, "fail": {"segments": [1], "mode": "permanent"}}"#;
    let out = leader(&["--plugin", "sim", "stdio"], workload);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("task seg-1 failed"), "{}", stderr(&out));
    assert!(stderr(&out).contains("injected failure in segment 1"), "{}", stderr(&out));
}

#[test]
fn a_wrong_bucket_or_unreachable_s3_endpoint_fails_fast_with_exit_1() {
    use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY, free_port};
    let server = S3Server::moto();
    server.create_bucket("proofs");
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    let cases = [
        ("s3://no-such-bucket/x", server.endpoint(), SECRET_KEY, "no-such-bucket"),
        ("s3://proofs/x", unreachable, SECRET_KEY, "127.0.0.1"),
    ];
    for (spec, endpoint, secret, needle) in cases {
        let started = std::time::Instant::now();
        let out = common::leader_with(
            &["--plugin", "sim", "--store", spec, "--s3-endpoint", &endpoint, "--s3-path-style", "stdio"],
            br#"{"tasks": 2, "cost": {"fixed": {"micros": 0}}}"#,
            &[
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                ("AWS_SECRET_ACCESS_KEY", secret),
                ("AWS_REGION", "us-east-1"),
            ],
        );
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{spec} at {endpoint}: {err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "took {:?}", started.elapsed());
        assert!(err.contains(needle), "{err}");
        assert!(!err.contains(SECRET_KEY), "the secret is never printed: {err}");
        assert!(out.stdout.is_empty());
    }
}
