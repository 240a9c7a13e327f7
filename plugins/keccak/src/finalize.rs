//! `wrap` (root + leaves + statement -> final proof) and `verify` (final proof -> verdict).
//!
//! A final proof is `{statement (block number, hash, parent state root, all items), root
//! node, every leaf artifact}`. Verifying it:
//!
//! 1. derives the absorbed-block stream from the items and checks that the leaves, in
//!    segment order, cover it exactly (same blocks, contiguous permutation ranges, each
//!    leaf's carry-in state = the previous leaf's last output where an item is split);
//! 2. re-verifies every leaf STARK against the (input, output) list derived from the
//!    blocks and the claimed outputs (XOR chaining; no Keccak is computed natively);
//! 3. recomputes the Poseidon2 accumulator along the root's recorded fold shape;
//! 4. checks the block bindings ([`crate::bind`]) on the proven digests.

use std::thread;

use proofline_plugin::{LeafSource, PluginError};

use crate::accumulate::{fold, leaf_digest};
use crate::aggregate::check_node;
use crate::artifact::{Artifact, FinalProof, LeafArtifact, decode, encode};
use crate::bind::{Anchor, bind};
use crate::leaf::{check_shape, leaf_node, verify_leaf};
use crate::sponge::State;
use crate::statement::{SpongeBlock, Statement, full_hex};

/// Assemble the final proof from the fold root, the job statement and the leaves.
///
/// Checks everything [`check_final`] checks except the leaf STARKs, which aggregation
/// already verified (the accumulator ties the loaded leaves to the verified ones); a
/// root that is a bare leaf (single-segment job) is verified here.
///
/// A leaf that cannot be loaded is reported with the store's own error (so a transient
/// store failure stays retryable); everything else is a rejection.
pub fn wrap(root: &[u8], meta: &[u8], leaves: &dyn LeafSource) -> Result<Vec<u8>, PluginError> {
    wrap_checked(root, meta, leaves).map_err(|e| match e {
        WrapError::Rejected(m) => PluginError::permanent(format!("wrap: {m}")),
        WrapError::Load(i, PluginError::Failed { message, retryable }) => {
            PluginError::Failed { message: format!("wrap: loading leaf {i}: {message}"), retryable }
        }
        WrapError::Load(_, other) => other,
    })
}

enum WrapError {
    Rejected(String),
    Load(u32, PluginError),
}

impl From<String> for WrapError {
    fn from(m: String) -> Self {
        Self::Rejected(m)
    }
}

fn wrap_checked(root: &[u8], meta: &[u8], leaves: &dyn LeafSource) -> Result<Vec<u8>, WrapError> {
    let statement: Statement = decode(meta, "job meta")?;
    let root = match decode::<Artifact>(root, "root artifact")? {
        Artifact::Node(node) => {
            check_node(&node).map_err(|e| format!("root artifact: {e}"))?;
            node
        }
        Artifact::Leaf(leaf) => {
            verify_leaf(&leaf)?;
            leaf_node(&leaf)
        }
    };
    let count = leaves.leaf_count();
    if root.seg_start != 0 || root.seg_end != count {
        return Err(WrapError::Rejected(format!(
            "root covers segments {}..{} but the job has {count} segments",
            root.seg_start, root.seg_end
        )));
    }
    let mut loaded = Vec::with_capacity(count as usize);
    for i in 0..count {
        let bytes = leaves.leaf(i).map_err(|e| WrapError::Load(i, e))?;
        match decode::<Artifact>(&bytes, &format!("leaf {i}"))? {
            Artifact::Leaf(leaf) => loaded.push(leaf),
            Artifact::Node(_) => {
                return Err(format!("leaf {i}: an aggregate node, not a leaf").into());
            }
        }
    }
    let proof = FinalProof { statement, root, leaves: loaded };
    check_final(&proof, false)?;
    Ok(encode(&proof))
}

/// Decode a final proof: `Err` only when the bytes are not one.
pub fn decode_final(bytes: &[u8]) -> Result<FinalProof, String> {
    decode(bytes, "keccak final proof")
}

/// Check a final proof; `Ok` carries the human statement, `Err` names the failed check.
pub fn check_final(p: &FinalProof, verify_starks: bool) -> Result<String, String> {
    let st = &p.statement;
    st.check_shape()?;
    let stream = st.block_stream();
    let root = &p.root;
    check_node(root).map_err(|e| format!("root: {e}"))?;
    if root.seg_start != 0 || root.seg_end as usize != p.leaves.len() {
        return Err(format!(
            "root covers segments {}..{} but the proof has {} leaves",
            root.seg_start,
            root.seg_end,
            p.leaves.len()
        ));
    }
    if root.perm_start != 0 || root.perm_end != stream.len() as u64 {
        return Err(format!(
            "root covers permutations {}..{} but the items take {}",
            root.perm_start,
            root.perm_end,
            stream.len()
        ));
    }

    let mut outputs = Vec::with_capacity(stream.len());
    for (i, leaf) in p.leaves.iter().enumerate() {
        check_leaf_place(i, leaf, &stream, outputs.len(), outputs.last())?;
        outputs.extend_from_slice(&leaf.outputs);
    }
    if outputs.len() != stream.len() {
        return Err(format!(
            "the leaves cover {} permutations but the items take {}",
            outputs.len(),
            stream.len()
        ));
    }
    if root.last_output != outputs[outputs.len() - 1] || !root.first_new_item {
        return Err("root summary does not match the leaves".into());
    }

    if verify_starks {
        verify_all(&p.leaves)?;
    }

    let digests: Vec<_> = p.leaves.iter().map(|l| leaf_digest(&encode(l))).collect();
    let acc = fold(0, root.seg_end, &root.splits, &|i| digests[i as usize])?;
    if acc != root.commitment {
        return Err("root commitment does not match the leaves along the recorded fold shape".into());
    }

    let bound = bind(st, &outputs)?;
    let root = match bound.anchor {
        Anchor::ParentHeader => format!("parent state root {}", full_hex(&bound.parent_state_root)),
        Anchor::BlockHashes { count } => format!(
            "pre-state root {} (the zero_bin witness's, not read from a parent header) and {count} \
             previous block hashes ending in parentHash {}",
            full_hex(&bound.parent_state_root),
            full_hex(&bound.parent_hash)
        ),
    };
    Ok(format!(
        "block {} {} binds {root}; {} Keccak-f over {} items ({}) proven in {} \
         segments (Plonky3 uni-stark, BabyBear/Poseidon2/FRI; leaves verified and accumulated, \
         not recursively folded)",
        bound.number,
        full_hex(&bound.hash),
        outputs.len(),
        st.items.len(),
        st.describe_items(),
        p.leaves.len()
    ))
}

/// Leaf `i` sits where the items say: right segment index, range, blocks and carry-in.
/// `previous` is the output of the permutation just before it (`None` for the first).
fn check_leaf_place(
    i: usize,
    leaf: &LeafArtifact,
    stream: &[SpongeBlock],
    expected_start: usize,
    previous: Option<&State>,
) -> Result<(), String> {
    if leaf.segment as usize != i {
        return Err(format!("leaf {i} is segment {} (leaves out of order)", leaf.segment));
    }
    check_shape(leaf)?;
    let start = leaf.perm_start;
    if start != expected_start as u64 {
        return Err(format!("segment {i}: starts at permutation {start}, expected {expected_start}"));
    }
    let end = expected_start + leaf.blocks.len();
    if end > stream.len() {
        return Err(format!(
            "segment {i}: covers permutations {start}..{end} beyond the items' {}",
            stream.len()
        ));
    }
    let blocks = &stream[expected_start..end];
    if let Some(j) = (0..blocks.len()).find(|&j| blocks[j] != leaf.blocks[j]) {
        return Err(format!(
            "segment {i}: block of permutation {} does not match the items",
            expected_start + j
        ));
    }
    match previous {
        _ if leaf.blocks[0].new_item => Ok(()),
        Some(prev) if *prev == leaf.carry_in => Ok(()),
        _ => Err(format!(
            "segment {i}: carry-in state is not the output of permutation {}",
            expected_start.wrapping_sub(1)
        )),
    }
}

/// Verify every leaf STARK on all cores; report the lowest failing segment.
fn verify_all(leaves: &[LeafArtifact]) -> Result<(), String> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get()).min(leaves.len());
    let mut failures: Vec<(usize, String)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..leaves.len())
                        .step_by(threads)
                        .filter_map(|i| verify_leaf(&leaves[i]).err().map(|e| (i, e)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("leaf verification does not panic")).collect()
    });
    failures.sort();
    match failures.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}
