//! Segment proving (the leaves of the fold) and leaf verification.

use std::sync::Arc;

use crate::accumulate::leaf_digest;
use crate::air::PermIo;
use crate::artifact::{AggNode, LeafArtifact, SegmentPayload, encode};
use crate::config::{Gpu, Offload, stark_config, stark_config_on};
use crate::plan::MAX_SEGMENT_SIZE;
use crate::sponge::{State, keccak_f};
use crate::stark::{self, StarkError};
use crate::statement::SpongeBlock;

/// The permutations a segment runs, computed natively: the trace's input and the
/// claimed output of each.
pub fn native_io(carry_in: &State, blocks: &[SpongeBlock]) -> Vec<PermIo> {
    let mut state = *carry_in;
    blocks
        .iter()
        .map(|block| {
            let input = block.input(&state);
            state = keccak_f(&input);
            PermIo { input, output: state }
        })
        .collect()
}

/// Prove one segment: rebuild its permutations from the payload and prove them, on the
/// CPU or, given one, on a GPU (the same proof either way).
pub fn prove_leaf(payload: &SegmentPayload, gpu: Option<&Arc<Gpu>>) -> Result<LeafArtifact, StarkError> {
    let io = native_io(&payload.carry_in, &payload.blocks);
    let config = match gpu {
        Some(gpu) => stark_config_on(gpu, Offload::DEFAULT),
        None => stark_config(),
    };
    let proof = stark::prove_perms_with(&io, &config)?;
    Ok(LeafArtifact {
        segment: payload.segment,
        perm_start: payload.perm_start,
        carry_in: payload.carry_in,
        blocks: payload.blocks.clone(),
        outputs: io.iter().map(|p| p.output).collect(),
        proof: stark::encode_proof(&proof),
    })
}

/// The (input, output) list a leaf claims: inputs follow from `carry_in`, the blocks and
/// the claimed outputs by XOR chaining; no Keccak is computed.
pub fn claimed_io(leaf: &LeafArtifact) -> Vec<PermIo> {
    let mut state = leaf.carry_in;
    leaf.blocks
        .iter()
        .zip(&leaf.outputs)
        .map(|(block, output)| {
            let input = block.input(&state);
            state = *output;
            PermIo { input, output: *output }
        })
        .collect()
}

/// Check a leaf's shape and its STARK. Errors start with `segment N:`.
pub fn verify_leaf(leaf: &LeafArtifact) -> Result<(), String> {
    let seg = leaf.segment;
    check_shape(leaf)?;
    let proof = stark::decode_proof(&leaf.proof).map_err(|e| format!("segment {seg}: STARK {e}"))?;
    stark::verify_perms(&claimed_io(leaf), &proof)
        .map_err(|e| format!("segment {seg}: STARK verification failed: {e}"))
}

/// Structural checks of a leaf (no cryptography).
pub fn check_shape(leaf: &LeafArtifact) -> Result<(), String> {
    let seg = leaf.segment;
    if leaf.blocks.is_empty() {
        return Err(format!("segment {seg}: no permutations"));
    }
    if leaf.blocks.len() as u64 > MAX_SEGMENT_SIZE {
        return Err(format!(
            "segment {seg}: {} permutations, more than the maximum segment of {MAX_SEGMENT_SIZE}",
            leaf.blocks.len()
        ));
    }
    if leaf.outputs.len() != leaf.blocks.len() {
        return Err(format!(
            "segment {seg}: {} claimed outputs for {} permutations",
            leaf.outputs.len(),
            leaf.blocks.len()
        ));
    }
    if leaf.blocks[0].new_item && leaf.carry_in != [0; 25] {
        return Err(format!("segment {seg}: carry-in state must be zero when the segment starts an item"));
    }
    Ok(())
}

/// The aggregate-node summary of a single leaf (a fold over one segment).
pub fn leaf_node(leaf: &LeafArtifact) -> AggNode {
    AggNode {
        seg_start: leaf.segment,
        seg_end: leaf.segment + 1,
        perm_start: leaf.perm_start,
        perm_end: leaf.perm_end(),
        first_new_item: leaf.blocks.first().is_some_and(|b| b.new_item),
        carry_in: leaf.carry_in,
        last_output: leaf.outputs.last().copied().unwrap_or([0; 25]),
        splits: Vec::new(),
        commitment: leaf_digest(&encode(leaf)),
    }
}
