//! Wire formats of the keccak plugin: segment payloads, leaf and aggregate artifacts, and
//! final proofs. All are postcard-encoded serde structs behind a format version byte
//! ([`proofline_plugin::codec`]).
//!
//! Encodings are deterministic, so a re-run of a task produces identical bytes.

use proofline_plugin::codec::Codec;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::sponge::State;
use crate::statement::{SpongeBlock, Statement};

/// Format version of every encoding below; bumped on any incompatible change.
pub const FORMAT_VERSION: u8 = 1;

/// What a worker needs to rebuild the permutation inputs of one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentPayload {
    /// Index of the segment in the plan.
    pub segment: u32,
    /// Index (in the job) of the segment's first permutation.
    pub perm_start: u64,
    /// Sponge state before the first block when that block continues an item split across
    /// segments (the planner computes it natively); zero when the first block starts an item.
    pub carry_in: State,
    /// The absorbed blocks, one per permutation.
    pub blocks: Vec<SpongeBlock>,
}

/// A proven segment: claimed permutation outputs and the STARK proving them.
///
/// The permutation inputs are not stored: they follow from `carry_in`, `blocks` and the
/// claimed outputs (input `j` = previous output, or zero at an item start, XOR block `j`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeafArtifact {
    /// Index of the segment in the plan.
    pub segment: u32,
    /// Index (in the job) of the segment's first permutation.
    pub perm_start: u64,
    /// As in [`SegmentPayload::carry_in`].
    pub carry_in: State,
    /// As in [`SegmentPayload::blocks`].
    pub blocks: Vec<SpongeBlock>,
    /// Claimed Keccak-f output of each permutation.
    pub outputs: Vec<State>,
    /// The postcard-encoded `p3_uni_stark::Proof` over [`crate::air::BoundKeccakAir`].
    pub proof: Vec<u8>,
}

impl LeafArtifact {
    /// Permutation range `perm_start .. perm_start + len` covered by this leaf.
    pub fn perm_end(&self) -> u64 {
        self.perm_start + self.blocks.len() as u64
    }
}

/// An aggregate node: verify-and-accumulate summary of a contiguous range of segments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggNode {
    /// First covered segment.
    pub seg_start: u32,
    /// One past the last covered segment.
    pub seg_end: u32,
    /// First covered permutation.
    pub perm_start: u64,
    /// One past the last covered permutation.
    pub perm_end: u64,
    /// Whether the first covered block starts an item.
    pub first_new_item: bool,
    /// Sponge state claimed before the first block (zero when `first_new_item`).
    pub carry_in: State,
    /// Output state of the last covered permutation.
    pub last_output: State,
    /// Fold shape: the split point of every internal node, in pre-order.
    pub splits: Vec<u32>,
    /// Poseidon2 accumulator over the leaves along `splits` (canonical BabyBear values).
    pub commitment: [u32; 8],
}

/// Anything `aggregate` accepts as a child and produces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Artifact {
    /// A proven segment (output of `prove_segment`).
    Leaf(LeafArtifact),
    /// An accumulated range (output of `aggregate`).
    Node(AggNode),
}

/// The final proof of a block, produced by `wrap`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalProof {
    /// Block, parent state root and all items.
    pub statement: Statement,
    /// The root of the fold (for a single segment, the leaf's own summary).
    pub root: AggNode,
    /// Every leaf artifact, in segment order.
    pub leaves: Vec<LeafArtifact>,
}

/// The keccak plugin's encoding: the shared versioned codec at [`FORMAT_VERSION`].
const CODEC: Codec = Codec::new(FORMAT_VERSION);

/// Encode `value` behind the format version byte.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    CODEC.encode(value)
}

/// Decode bytes made by [`encode`]; `what` names the thing in the error message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    CODEC.decode(bytes, what).map_err(|e| match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    })
}
