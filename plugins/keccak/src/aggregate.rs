//! Aggregation: verify two adjacent children and accumulate them into one node.
//!
//! This is *verify-and-accumulate*, not recursive proving: a leaf child's STARK is checked
//! with the Plonky3 verifier, an aggregate child is taken as produced by an earlier
//! `aggregate` call (whose own children were checked), and the new node commits to both
//! with Poseidon2 (see [`crate::accumulate`]). The final verifier re-verifies every leaf,
//! so a forged aggregate node cannot make a final proof verify.

use std::thread;

use crate::accumulate::node_digest;
use crate::artifact::{AggNode, Artifact, decode, encode};
use crate::leaf::{leaf_node, verify_leaf};

/// Why a child was refused.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// The bytes are not an artifact of this plugin.
    #[error("{0}")]
    Malformed(String),
    /// A child does not verify, or the two do not fit together.
    #[error("{0}")]
    Rejected(String),
}

/// Fold `left` (segments `a..m`) and `right` (segments `m..b`) into a node over `a..b`.
pub fn aggregate(left: &[u8], right: &[u8]) -> Result<Vec<u8>, AggregateError> {
    let (l, r) = thread::scope(|s| {
        let l = s.spawn(|| child_node(left, "left child"));
        let r = child_node(right, "right child");
        (l.join().expect("child verification does not panic"), r)
    });
    let (l, r) = (l?, r?);
    Ok(encode(&Artifact::Node(join(&l, &r)?)))
}

/// Decode a child; verify it if it is a leaf; summarize it as a node.
fn child_node(bytes: &[u8], what: &str) -> Result<AggNode, AggregateError> {
    match decode::<Artifact>(bytes, what).map_err(AggregateError::Malformed)? {
        Artifact::Leaf(leaf) => {
            verify_leaf(&leaf).map_err(|e| AggregateError::Rejected(format!("{what}: {e}")))?;
            Ok(leaf_node(&leaf))
        }
        Artifact::Node(node) => {
            check_node(&node).map_err(|e| AggregateError::Malformed(format!("{what}: {e}")))?;
            Ok(node)
        }
    }
}

/// Internal consistency of a node's ranges and shape.
pub fn check_node(n: &AggNode) -> Result<(), String> {
    if n.seg_start >= n.seg_end || n.perm_start >= n.perm_end {
        return Err(format!(
            "node covers empty ranges (segments {}..{}, permutations {}..{})",
            n.seg_start, n.seg_end, n.perm_start, n.perm_end
        ));
    }
    if n.splits.len() as u64 != u64::from(n.seg_end - n.seg_start) - 1 {
        return Err(format!(
            "fold shape of segments {}..{} records {} splits",
            n.seg_start,
            n.seg_end,
            n.splits.len()
        ));
    }
    if n.first_new_item && n.carry_in != [0; 25] {
        return Err("carry-in state must be zero when the range starts an item".into());
    }
    Ok(())
}

/// Check adjacency and sponge continuity, then build the parent node.
fn join(l: &AggNode, r: &AggNode) -> Result<AggNode, AggregateError> {
    let reject = AggregateError::Rejected;
    if l.seg_end != r.seg_start {
        return Err(reject(format!(
            "children are not adjacent: left covers segments {}..{}, right {}..{}",
            l.seg_start, l.seg_end, r.seg_start, r.seg_end
        )));
    }
    if l.perm_end != r.perm_start {
        return Err(reject(format!(
            "children are not contiguous: left covers permutations {}..{}, right {}..{}",
            l.perm_start, l.perm_end, r.perm_start, r.perm_end
        )));
    }
    if !r.first_new_item && r.carry_in != l.last_output {
        return Err(reject(format!(
            "sponge does not continue across segments {}|{}: the right child's carry-in \
             state is not the output of permutation {}",
            r.seg_start - 1,
            r.seg_start,
            l.perm_end - 1
        )));
    }
    let mut splits = Vec::with_capacity(l.splits.len() + r.splits.len() + 1);
    splits.push(l.seg_end);
    splits.extend(&l.splits);
    splits.extend(&r.splits);
    Ok(AggNode {
        seg_start: l.seg_start,
        seg_end: r.seg_end,
        perm_start: l.perm_start,
        perm_end: r.perm_end,
        first_new_item: l.first_new_item,
        carry_in: l.carry_in,
        last_output: r.last_output,
        splits,
        commitment: node_digest(l.seg_start, l.seg_end, r.seg_end, &l.commitment, &r.commitment),
    })
}
