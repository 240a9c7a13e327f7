//! Input limits and overflow-checked flags of `proofline-leader`: over-limit input is
//! bad input (exit 2) with a message naming the limit, rejected before it is read
//! whole; sizes and ages that would overflow are rejected, never wrapped.

mod common;

use std::process::Output;

/// The keccak plugin's documented limit (`proofline_keccak::witness::limits`).
const MAX_JSON_VALUES: usize = 1 << 21;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_bad_input(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(out.stdout.is_empty(), "nothing may reach stdout on bad input");
    for needle in needles {
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
    }
}

#[test]
fn verify_dev_zero_is_bad_input_not_out_of_memory() {
    // The default limit (1024 MiB) and a small one: /dev/zero never ends, and has no size.
    for extra in [&[][..], &["--max-proof-mib", "1"][..]] {
        let mut args = vec!["verify", "/dev/zero"];
        args.extend_from_slice(extra);
        let out = common::leader_with(&args, b"", &[]);
        assert_bad_input(&out, &["/dev/zero", "larger than", "--max-proof-mib"]);
    }
}

#[test]
fn verify_rejects_an_oversized_file_or_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.proof");
    std::fs::write(&big, vec![0u8; (1 << 20) + 1]).unwrap();
    let out = common::leader_with(&["verify", "--max-proof-mib", "1", big.to_str().unwrap()], b"", &[]);
    assert_bad_input(&out, &["big.proof", "larger than 1 MiB", "--max-proof-mib"]);

    let out = common::leader_fed(&["verify", "--max-proof-mib", "1", "-"], vec![7u8; 3 << 20], &[]);
    assert_bad_input(&out, &["larger than 1 MiB"]);

    // Exactly at the limit is read (and then found not to be a proof file).
    std::fs::write(&big, vec![0u8; 1 << 20]).unwrap();
    let out = common::leader_with(&["verify", "--max-proof-mib", "1", big.to_str().unwrap()], b"", &[]);
    assert_bad_input(&out, &["not a Proofline proof file"]);
}

#[test]
fn stdin_over_max_input_mib_is_bad_input_and_nothing_is_written() {
    // 5 MiB of input, 1 MiB allowed: rejected (the leader stops reading at 1 MiB + 1).
    let mut input = common::example();
    input.resize(5 << 20, b' ');
    let out = common::leader_fed(&["stdio", "--max-input-mib", "1"], input.clone(), &[]);
    assert_bad_input(&out, &["larger than 1 MiB", "--max-input-mib"]);
    let out = common::leader_fed(&["stdio"], input, &[("PROOFLINE_MAX_INPUT_MIB", "2")]);
    assert_bad_input(&out, &["larger than 2 MiB"]);
}

#[test]
fn a_witness_of_millions_of_empty_keys_is_bad_input() {
    let mut doc: serde_json::Value = serde_json::from_slice(&common::example()).unwrap();
    doc["witness"]["keys"] = serde_json::Value::Array(Vec::new());
    let text = serde_json::to_string(&doc).unwrap();
    let keys = vec!["\"\""; 2 * MAX_JSON_VALUES].join(",");
    let input = text.replacen("\"keys\":[]", &format!("\"keys\":[{keys}]"), 1);
    assert!(input.len() > 3 * MAX_JSON_VALUES, "the keys went in");
    let out = common::leader_fed(&["stdio"], input.into_bytes(), &[]);
    assert_bad_input(&out, &["bad input on stdin", "too many JSON values"]);
}

#[test]
fn older_than_that_overflows_is_bad_input_naming_the_flag() {
    // 20 digits overflow the number; 213503982334602 days overflow the seconds.
    for age in ["99999999999999999999d", "213503982334602d", "18446744073709551616s"] {
        let out = common::leader_with(&["gc", "--older-than", age, "--dry-run"], b"", &[]);
        assert_bad_input(&out, &["--older-than", "too large"]);
    }
    let out = common::leader_with(&["gc", "--older-than", "213503982334601d", "--dry-run"], b"", &[]);
    assert_eq!(out.status.code(), Some(0), "the largest age that fits is fine: {}", stderr(&out));
}

#[test]
fn cache_mib_that_overflows_is_bad_input_naming_the_flag() {
    let out =
        common::leader_with(&["--cache-mib", "18446744073709551615", "gc", "--older-than", "1d"], b"", &[]);
    assert_bad_input(&out, &["--cache-mib", "too large"]);
    let out = common::leader_with(
        &["gc", "--older-than", "1d"],
        b"",
        &[("PROOFLINE_CACHE_MIB", "17592186044416")], // 2^44 MiB = 2^64 bytes
    );
    assert_bad_input(&out, &["--cache-mib", "too large"]);
    let huge = "18446744073709551615";
    for (args, flag) in [
        (vec!["stdio", "--max-input-mib", huge], "--max-input-mib"),
        (vec!["verify", "--max-proof-mib", huge, "-"], "--max-proof-mib"),
    ] {
        let out = common::leader_with(&args, b"", &[]);
        assert_bad_input(&out, &[flag, "too large"]);
    }
}
