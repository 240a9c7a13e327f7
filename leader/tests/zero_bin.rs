//! `proofline-leader --header` with a real Polygon Zero zero_bin witness (mainnet block
//! 19807080): proven (`batch`, one job per block), verified and bound to the block; what
//! is missing or does not match is exit 2 with a message naming it (`stdio`).

mod common;

use std::path::PathBuf;

use common::leader_with;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!("{}/../../shared/fixtures/{name}", env!("CARGO_MANIFEST_DIR")))
}

fn witness() -> Vec<u8> {
    std::fs::read(fixture("mainnet-19807080.polygon-zero-witness.json")).unwrap()
}

fn header_arg() -> String {
    fixture("mainnet-19807080.header.json").display().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `batch --header` makes one job per block of a zero_bin batch: the real block is
/// proven and verifies; a second block whose header is not in the file is bad input,
/// named by its place in the batch.
#[test]
fn a_zero_bin_batch_is_one_job_per_block_and_the_real_block_proves_verifies_and_binds() {
    let dir = tempfile::tempdir().unwrap();
    let mut batch: serde_json::Value = serde_json::from_slice(&witness()).unwrap();
    let mut next = batch[0].clone();
    next["other_data"]["b_data"]["b_meta"]["block_number"] = "0x12e3b69".into();
    let hashes = &mut next["other_data"]["b_data"]["b_hashes"];
    hashes["prev_hashes"][255] = hashes["cur_hash"].clone();
    batch.as_array_mut().unwrap().push(next);
    let input = dir.path().join("19807080-19807081.json");
    std::fs::write(&input, serde_json::to_vec(&batch).unwrap()).unwrap();
    let out_dir = dir.path().join("proofs");
    let out = leader_with(
        &["batch", "--header", &header_arg(), "--out", out_dir.to_str().unwrap(), input.to_str().unwrap()],
        b"",
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "one block is bad input: {}", stderr(&out));
    assert!(stderr(&out).contains("[block 1]") && stderr(&out).contains("no header for block 19807081"));

    let file = out_dir.join("19807080-0b4c5b49.proof");
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_proofline-leader"))
        .args(["verify", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", stderr(&verify));
    let said = String::from_utf8_lossy(&verify.stdout);
    for bound in [
        "block 19807080 0x0b4c5b498320e5858e7445a5af10658ffee39c9a39de22c81452de5421f63464",
        "pre-state root 0xbbd66174555d27c88e285ff4797de401470d8d2486d15513ab36e491e864bca2",
        "256 previous block hashes ending in parentHash 0x27c8003b8d5ed3a0dfb4313cf8e969478176df308cb8ff7590f86323469046e2",
        "968 state nodes, 15 codes",
    ] {
        assert!(said.contains(bound), "verify does not say {bound:?}: {said}");
    }
}

#[test]
fn a_missing_or_wrong_header_and_a_batch_are_exit_2_naming_what() {
    let bare = leader_with(&["stdio"], &witness(), &[]);
    assert_eq!(bare.status.code(), Some(2));
    assert!(stderr(&bare).contains("give the header with --header FILE"), "{}", stderr(&bare));

    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("header.json");
    let mut header: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("mainnet-19807080.header.json")).unwrap()).unwrap();
    header[0]["timestamp"] = "0x1".into();
    header[0].as_object_mut().unwrap().remove("hash");
    std::fs::write(&wrong, serde_json::to_vec(&header).unwrap()).unwrap();
    let out = leader_with(&["stdio", "--header", wrong.to_str().unwrap()], &witness(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("b_hashes.cur_hash"), "{}", stderr(&out));

    // A tampered compact stream rebuilds another trie: zero_bin's own pre-state check.
    let mut tampered: serde_json::Value = serde_json::from_slice(&witness()).unwrap();
    let compact = tampered[0]["block_trace"]["trie_pre_images"]["combined"]["compact"].as_str().unwrap();
    let at = compact.len() - 200; // inside the last instructions' operands
    let flipped = if &compact[at..at + 1] == "0" { "1" } else { "0" };
    let compact = format!("{}{flipped}{}", &compact[..at], &compact[at + 1..]);
    tampered[0]["block_trace"]["trie_pre_images"]["combined"]["compact"] = compact.into();
    let out =
        leader_with(&["stdio", "--header", &header_arg()], &serde_json::to_vec(&tampered).unwrap(), &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("!= other_data.checkpoint_state_trie_root 0xbbd66174"), "{}", stderr(&out));

    let missing = leader_with(&["stdio", "--header", "/nonexistent/header.json"], &witness(), &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("--header /nonexistent/header.json"), "{}", stderr(&missing));

    let mut batch: serde_json::Value = serde_json::from_slice(&witness()).unwrap();
    let first = batch[0].clone();
    batch.as_array_mut().unwrap().push(first);
    let out = leader_with(&["stdio", "--header", &header_arg()], &serde_json::to_vec(&batch).unwrap(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("a zero_bin batch of 2 blocks"), "{}", stderr(&out));

    let example =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/example-block.json")).unwrap();
    let out = leader_with(&["stdio", "--header", &header_arg()], &example, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--header is for zero_bin witnesses"), "{}", stderr(&out));
}
