//! Helpers shared by the keccak plugin's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use alloy_consensus::Header;
use alloy_primitives::{B256, keccak256};
use proofline_keccak::KeccakPlugin;
use proofline_keccak::witness::{BlockWitness, WitnessFormat};
use proofline_plugin::{ExecCx, JobMeta, LeafSource, Plan, PlanOptions, PluginError, ProofSystem};

/// Leaves kept in memory, for `wrap`.
pub struct MemLeaves(pub Vec<Vec<u8>>);

impl LeafSource for MemLeaves {
    fn leaf_count(&self) -> u32 {
        self.0.len() as u32
    }
    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        self.0.get(index as usize).cloned().ok_or_else(|| PluginError::permanent(format!("no leaf {index}")))
    }
}

pub fn cx(task: &str) -> ExecCx {
    ExecCx::new(task, 0, Arc::new(AtomicBool::new(false)))
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures").join(name)
}

/// A small, valid block witness: 2 ancestor headers, 3 state nodes (one of 140 bytes, so
/// two permutations), a 300-byte code (three permutations) and 2 keys.
pub fn small_witness() -> BlockWitness {
    let root_node: Vec<u8> = (0..140u32).map(|i| (i * 13 + 1) as u8).collect();
    let state = vec![vec![0xc2, 0x80, 0x80], root_node.clone(), vec![0xc1, 0x01]];
    let grandparent = Header { number: 8, gas_limit: 30_000_000, ..Default::default() };
    let grandparent_rlp = alloy_rlp::encode(&grandparent);
    let parent = Header {
        number: 9,
        parent_hash: keccak256(&grandparent_rlp),
        state_root: keccak256(&root_node),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    let parent_rlp = alloy_rlp::encode(&parent);
    let block = Header {
        number: 10,
        parent_hash: keccak256(&parent_rlp),
        state_root: B256::repeat_byte(7),
        gas_limit: 30_000_000,
        ..Default::default()
    };
    let header_rlp = alloy_rlp::encode(&block);
    BlockWitness {
        format: WitnessFormat::Canonical,
        number: 10,
        hash: keccak256(&header_rlp),
        header_rlp,
        parent_hash: block.parent_hash,
        parent_state_root: parent.state_root,
        state,
        codes: vec![(0..300u32).map(|i| i as u8).collect()],
        keys: vec![vec![0x11; 20], vec![0x22; 32]],
        headers: vec![grandparent_rlp, parent_rlp],
        prev_hashes: Vec::new(),
    }
}

pub fn plan(input: &[u8], segment_size: Option<u64>) -> Plan {
    KeccakPlugin.plan(input, &PlanOptions { segment_size }).expect("plan")
}

pub fn prove_all(plan: &Plan) -> Vec<Vec<u8>> {
    plan.segments
        .iter()
        .enumerate()
        .map(|(i, s)| KeccakPlugin.prove_segment(&mut cx(&format!("seg-{i}")), &s.payload).unwrap())
        .collect()
}

pub fn agg(left: &[u8], right: &[u8]) -> Vec<u8> {
    KeccakPlugin.aggregate(&mut cx("agg"), left, right).expect("aggregate")
}

/// Fold left to right: (((0,1),2),3)...
pub fn fold_streaming(leaves: &[Vec<u8>]) -> Vec<u8> {
    let mut acc = leaves[0].clone();
    for leaf in &leaves[1..] {
        acc = agg(&acc, leaf);
    }
    acc
}

/// Fold as a balanced tree.
pub fn fold_balanced(leaves: &[Vec<u8>]) -> Vec<u8> {
    match leaves {
        [one] => one.clone(),
        _ => {
            let mid = leaves.len() / 2;
            agg(&fold_balanced(&leaves[..mid]), &fold_balanced(&leaves[mid..]))
        }
    }
}

pub fn wrap(root: &[u8], plan: &Plan, leaves: Vec<Vec<u8>>) -> Result<Vec<u8>, PluginError> {
    let source = MemLeaves(leaves);
    let job = JobMeta { job: "test", meta: &plan.meta, leaves: &source };
    KeccakPlugin.wrap(&mut cx("wrap"), root, &job)
}
