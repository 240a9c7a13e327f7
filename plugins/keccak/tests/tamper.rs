//! Tampered proofs and bad aggregation inputs must never verify.
//! Run in release: `cargo test -p proofline-keccak --release`.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use common::*;
use proofline_keccak::KeccakPlugin;
use proofline_keccak::artifact::{Artifact, FinalProof, SegmentPayload, decode, encode};
use proofline_plugin::{ExecCx, Plan, PluginError, ProofSystem, Verdict};

struct Job {
    plan: Plan,
    leaves: Vec<Vec<u8>>,
    proof: Vec<u8>,
}

/// One small job, proven once and shared by every test of this file.
fn job() -> &'static Job {
    static JOB: OnceLock<Job> = OnceLock::new();
    JOB.get_or_init(|| {
        let input = small_witness().to_canonical_json();
        let plan = plan(input.as_bytes(), Some(3));
        let leaves = prove_all(&plan);
        let root = fold_balanced(&leaves);
        let proof = wrap(&root, &plan, leaves.clone()).unwrap();
        Job { plan, leaves, proof }
    })
}

fn final_proof() -> FinalProof {
    decode(&job().proof, "proof").unwrap()
}

/// Verify a modified final proof; it must be Invalid, and the reason must contain `why`.
fn assert_invalid(proof: &FinalProof, why: &str) {
    match KeccakPlugin.verify(&encode(proof)).unwrap() {
        Verdict::Invalid { reason } => assert!(reason.contains(why), "reason: {reason}"),
        Verdict::Valid { statement } => panic!("tampered proof verified: {statement}"),
    }
}

fn leaf(i: usize) -> proofline_keccak::artifact::LeafArtifact {
    match decode::<Artifact>(&job().leaves[i], "leaf").unwrap() {
        Artifact::Leaf(l) => l,
        Artifact::Node(_) => unreachable!(),
    }
}

#[test]
fn untampered_is_valid() {
    assert!(matches!(KeccakPlugin.verify(&job().proof).unwrap(), Verdict::Valid { .. }));
}

#[test]
fn flipped_stark_proof_bytes() {
    let len = final_proof().leaves[1].proof.len();
    for at in [0, 7, 100, len / 3, len / 2, len - 40, len - 1] {
        let mut p = final_proof();
        p.leaves[1].proof[at] ^= 0x01;
        assert_invalid(&p, "segment 1: STARK");
    }
}

#[test]
fn flipped_claimed_output() {
    let mut p = final_proof();
    p.leaves[2].outputs[1][3] ^= 1 << 17;
    assert_invalid(&p, "segment 2: STARK verification failed");
    // The digest lanes of the last output of the header's sponge.
    let mut p = final_proof();
    p.leaves[0].outputs[0][0] ^= 1;
    assert_invalid(&p, "segment 0: STARK verification failed");
}

#[test]
fn flipped_item_byte() {
    for item in [0, 1, 3, 6] {
        let mut p = final_proof();
        p.statement.items[item].data[0] ^= 0x40;
        assert_invalid(&p, "does not match the items");
    }
}

#[test]
fn flipped_block_hash_and_state_root() {
    let mut p = final_proof();
    p.statement.hash[31] ^= 1;
    assert_invalid(&p, "header digest");
    let mut p = final_proof();
    p.statement.parent_state_root[0] ^= 1;
    assert_invalid(&p, "parent state root");
    let mut p = final_proof();
    p.statement.number += 1;
    assert_invalid(&p, "block number");
}

#[test]
fn swapped_leaves() {
    let mut p = final_proof();
    p.leaves.swap(1, 2);
    assert_invalid(&p, "out of order");
    // Even with the segment numbers swapped back, the blocks do not line up.
    let (a, b) = (p.leaves[1].segment, p.leaves[2].segment);
    p.leaves[1].segment = b;
    p.leaves[2].segment = a;
    assert_invalid(&p, "segment 1");
}

#[test]
fn tampered_root_and_leaf_set() {
    let mut p = final_proof();
    p.root.commitment[0] ^= 1;
    assert_invalid(&p, "root commitment");
    let mut p = final_proof();
    p.root.splits.reverse();
    assert!(matches!(KeccakPlugin.verify(&encode(&p)).unwrap(), Verdict::Invalid { .. }));
    let mut p = final_proof();
    p.leaves.pop();
    assert_invalid(&p, "leaves");
}

#[test]
fn truncated_and_garbage_bytes_are_bad_input() {
    let proof = &job().proof;
    for len in [0, 1, 10, proof.len() / 2, proof.len() - 1] {
        let err = KeccakPlugin.verify(&proof[..len]).unwrap_err();
        assert!(matches!(err, PluginError::BadInput(_)), "{err:?}");
    }
    let mut versioned = proof.clone();
    versioned[0] = 99;
    let err = KeccakPlugin.verify(&versioned).unwrap_err();
    assert!(matches!(err, PluginError::BadInput(ref m) if m.contains("version")), "{err:?}");
}

#[test]
fn random_byte_flips_never_verify() {
    let proof = &job().proof;
    let step = proof.len() / 48;
    for at in (1..proof.len()).step_by(step) {
        let mut bad = proof.clone();
        bad[at] ^= 0x10;
        if let Ok(Verdict::Valid { .. }) = KeccakPlugin.verify(&bad) {
            panic!("byte {at} flipped and the proof still verifies");
        }
    }
}

#[test]
fn aggregate_rejects_non_adjacent_and_reordered() {
    let l = &job().leaves;
    let mut cx = cx("agg");
    let err = KeccakPlugin.aggregate(&mut cx, &l[0], &l[2]).unwrap_err();
    assert!(err.to_string().contains("not adjacent"), "{err}");
    assert!(!err.is_retryable());
    let err = KeccakPlugin.aggregate(&mut cx, &l[1], &l[0]).unwrap_err();
    assert!(err.to_string().contains("not adjacent"), "{err}");
    let left = agg(&l[0], &l[1]);
    assert!(KeccakPlugin.aggregate(&mut cx, &left, &l[3]).is_err());
}

#[test]
fn aggregate_rejects_corrupted_children() {
    let l = &job().leaves;
    let mut cx = cx("agg");
    // Garbage and truncated bytes.
    for bad in [vec![1u8, 2, 3], l[0][..l[0].len() - 9].to_vec(), Vec::new()] {
        let err = KeccakPlugin.aggregate(&mut cx, &bad, &l[1]).unwrap_err();
        assert!(matches!(err, PluginError::Failed { retryable: false, .. }), "{err:?}");
    }
    // A byte flipped deep inside the STARK proof.
    let mut flipped = l[1].clone();
    let n = flipped.len();
    flipped[n - 100] ^= 0x08;
    let err = KeccakPlugin.aggregate(&mut cx, &l[0], &flipped).unwrap_err();
    assert!(matches!(err, PluginError::Failed { retryable: false, .. }), "{err:?}");
    // A re-encoded leaf with a false claimed output.
    let mut forged = leaf(1);
    forged.outputs[0][10] ^= 1;
    let forged = encode(&Artifact::Leaf(forged));
    let err = KeccakPlugin.aggregate(&mut cx, &l[0], &forged).unwrap_err();
    assert!(err.to_string().contains("segment 1: STARK verification failed"), "{err}");
}

#[test]
fn aggregate_rejects_broken_sponge_continuity() {
    // Segment 1 continues the header's sponge. Prove it from a wrong carry-in state: the
    // STARK is valid for what it claims, but the chain does not continue segment 0.
    let mut payload: SegmentPayload =
        decode(&job().plan.segments.get(1).unwrap().payload, "payload").unwrap();
    assert!(!payload.blocks[0].new_item, "segment 1 should continue an item");
    payload.carry_in[20] ^= 1;
    let forged = KeccakPlugin.prove_segment(&mut cx("seg-1"), &encode(&payload)).unwrap();
    let err = KeccakPlugin.aggregate(&mut cx("agg"), &job().leaves[0], &forged).unwrap_err();
    assert!(err.to_string().contains("sponge does not continue"), "{err}");
}

#[test]
fn wrap_rejects_partial_root() {
    let l = &job().leaves;
    let partial = agg(&l[0], &l[1]);
    let err = wrap(&partial, &job().plan, l.clone()).unwrap_err();
    assert!(err.to_string().contains("covers segments 0..2"), "{err}");
}

#[test]
fn prove_segment_errors() {
    let err = KeccakPlugin.prove_segment(&mut cx("seg-0"), b"\x01garbage").unwrap_err();
    assert!(matches!(err, PluginError::Failed { retryable: false, .. }), "{err:?}");
    let mut cancelled = ExecCx::new("seg-0", 0, Arc::new(AtomicBool::new(true)));
    let err =
        KeccakPlugin.prove_segment(&mut cancelled, &job().plan.segments.get(0).unwrap().payload).unwrap_err();
    assert_eq!(err, PluginError::Cancelled);
}

#[test]
fn wrap_keeps_store_errors_retryable() {
    struct Flaky;
    impl proofline_plugin::LeafSource for Flaky {
        fn leaf_count(&self) -> u32 {
            job().leaves.len() as u32
        }
        fn leaf(&self, _: u32) -> Result<Vec<u8>, PluginError> {
            Err(PluginError::retryable("store timed out"))
        }
    }
    let root = fold_streaming(&job().leaves);
    let meta = proofline_plugin::JobMeta { job: "test", meta: &job().plan.meta, leaves: &Flaky };
    let err = KeccakPlugin.wrap(&mut cx("wrap"), &root, &meta).unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(err.to_string().contains("leaf 0"), "{err}");
}
