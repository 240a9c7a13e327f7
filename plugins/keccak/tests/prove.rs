//! End-to-end proving with the keccak plugin: plan, prove, aggregate, wrap, verify.
//! Run in release: `cargo test -p proofline-keccak --release`.

mod common;

use std::time::Instant;

use common::*;
use proofline_keccak::artifact::{Artifact, FinalProof, decode};
use proofline_keccak::statement::full_hex;
use proofline_keccak::{KeccakPlugin, permutation_inputs, prove_plain};
use proofline_plugin::{PlanOptions, PluginError, ProofSystem, Verdict};

#[test]
fn small_witness_two_fold_shapes() {
    let witness = small_witness();
    let input = witness.to_canonical_json();
    let plan = plan(input.as_bytes(), Some(3));
    let perms: u64 = plan.segments.iter().map(|s| s.cost).sum();
    assert_eq!(perms as usize, permutation_inputs(&witness).len());
    assert!(plan.segments.len() >= 4, "{}", plan.summary);
    assert!(plan.summary.starts_with("block 10 0x"), "{}", plan.summary);

    let leaves = prove_all(&plan);
    // Deterministic: proving a segment again gives the same bytes.
    let again = KeccakPlugin.prove_segment(&mut cx("seg-0"), &plan.segments.get(0).unwrap().payload).unwrap();
    assert_eq!(again, leaves[0]);

    let streaming = fold_streaming(&leaves);
    let balanced = fold_balanced(&leaves);
    assert_ne!(streaming, balanced, "different fold shapes give different roots");

    let hash = full_hex(&witness.hash.0);
    let root = full_hex(&witness.parent_state_root.0);
    for root_bytes in [&streaming, &balanced] {
        let proof = wrap(root_bytes, &plan, leaves.clone()).unwrap();
        match KeccakPlugin.verify(&proof).unwrap() {
            Verdict::Valid { statement } => {
                assert!(statement.contains(&hash), "{statement}");
                assert!(statement.contains(&root), "{statement}");
                assert!(statement.contains(&format!("{perms} Keccak-f")), "{statement}");
            }
            Verdict::Invalid { reason } => panic!("invalid: {reason}"),
        }
    }
}

#[test]
fn single_segment_job_wraps_a_bare_leaf() {
    let input = small_witness().to_canonical_json();
    let plan = plan(input.as_bytes(), None);
    assert_eq!(plan.segments.len(), 1);
    let leaves = prove_all(&plan);
    let proof = wrap(&leaves[0], &plan, leaves.clone()).unwrap();
    assert!(matches!(KeccakPlugin.verify(&proof).unwrap(), Verdict::Valid { .. }));
}

#[test]
fn plan_rejects_bad_input() {
    let opts = PlanOptions::default();
    let err = KeccakPlugin.plan(b"{\"block\": 1}", &opts).unwrap_err();
    assert!(matches!(err, PluginError::BadInput(_)), "{err:?}");
    let err = KeccakPlugin.plan(b"not json", &opts).unwrap_err();
    assert!(matches!(err, PluginError::BadInput(ref m) if m.contains("line")), "{err:?}");
    let input = small_witness().to_canonical_json();
    let zero = PlanOptions { segment_size: Some(0) };
    assert!(matches!(KeccakPlugin.plan(input.as_bytes(), &zero), Err(PluginError::BadInput(_))));
}

#[test]
fn plain_baseline_runs() {
    let inputs = permutation_inputs(&small_witness());
    assert!(prove_plain(inputs) > 10_000);
}

/// The real mainnet block: full prove and verify with the default segment size.
#[test]
fn mainnet_22615247_full() {
    let input = std::fs::read(fixture("mainnet-22615247.canonical.json")).unwrap();
    let t = Instant::now();
    let plan = plan(&input, None);
    eprintln!("plan: {} in {:?}", plan.summary, t.elapsed());

    let mut leaves = Vec::new();
    for (i, seg) in plan.segments.iter().enumerate() {
        let t = Instant::now();
        let leaf = KeccakPlugin.prove_segment(&mut cx("seg"), &seg.payload).unwrap();
        eprintln!(
            "segment {i}: {} permutations proven in {:?}, leaf {} bytes",
            seg.cost,
            t.elapsed(),
            leaf.len()
        );
        leaves.push(leaf);
    }
    let t = Instant::now();
    let root = fold_balanced(&leaves);
    eprintln!("aggregate (all nodes): {:?}", t.elapsed());
    let t = Instant::now();
    let proof = wrap(&root, &plan, leaves).unwrap();
    eprintln!("wrap: {:?}, final proof {} bytes", t.elapsed(), proof.len());

    let t = Instant::now();
    let verdict = KeccakPlugin.verify(&proof).unwrap();
    eprintln!("verify: {:?}", t.elapsed());
    let Verdict::Valid { statement } = verdict else { panic!("{verdict:?}") };
    eprintln!("{statement}");
    assert!(statement.contains("block 22615247"), "{statement}");
    assert!(
        statement.contains("0x0497f69549701d578c67a43951f9e4fcb92b1691b9f6bbdfa63a17bc41d3971e"),
        "{statement}"
    );
    assert!(
        statement.contains("0xbe3cc2842dba8d8161325f9a91fd69f2c14a12e2ce8a3ec038a1d95e7bc767b7"),
        "{statement}"
    );

    let decoded: FinalProof = decode(&proof, "proof").unwrap();
    assert_eq!(decoded.leaves.len(), plan.segments.len());
    let _: Artifact = decode(&root, "root").unwrap();
}

/// Every real witness format plans, with one permutation per absorbed block.
#[test]
fn real_fixtures_plan() {
    for name in
        ["mainnet-22615247.canonical.json", "mainnet-22615247.zkpig.json", "hoodi-1265656.ethrex-replay.json"]
    {
        let input = std::fs::read(fixture(name)).unwrap();
        let witness = proofline_keccak::witness::parse_block_witness(&input).unwrap();
        let plan = plan(&input, None);
        let perms: u64 = plan.segments.iter().map(|s| s.cost).sum();
        assert_eq!(perms as usize, witness.permutation_count(), "{name}");
        assert_eq!(perms as usize, permutation_inputs(&witness).len(), "{name}");
        assert!(plan.segments.iter().all(|s| s.cost <= 1365), "{name}");
        eprintln!("{name}: {}", plan.summary);
    }
}
