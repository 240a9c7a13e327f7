//! The Poseidon2 accumulator of aggregation: commitments to leaves and to fold nodes.
//!
//! Aggregation is *verify-and-accumulate*, not recursive: an aggregate node does not
//! contain a proof that its children verified; it records a Poseidon2 commitment to them
//! and the fold shape, and the final verifier re-verifies every leaf STARK and recomputes
//! the commitment along the recorded shape. The upgrade path to recursive folding is a new
//! plugin behind the same API.
//!
//! * leaf digest = `H(1, len_lo, len_hi, bytes packed 3 per element)` over the leaf's
//!   canonical encoding (binding segment, blocks, outputs and the STARK proof bytes),
//! * node digest = `H(2, a, m, b, left, right)` for a node over segments `a..b` split at `m`,
//!
//! with `H` the Poseidon2 sponge of the Merkle trees (BabyBear, width 16, rate 8, 8-element
//! digest; inputs are length-prefixed or of fixed length, so the padding-free sponge is
//! injective on them).

use p3_field::{PrimeCharacteristicRing, PrimeField32};
use p3_symmetric::CryptographicHasher;

use crate::config::{FieldHash, Val, perm};

/// An accumulator value: 8 BabyBear elements (canonical `u32`s).
pub type Digest = [u32; 8];

const LEAF_TAG: u32 = 1;
const NODE_TAG: u32 = 2;

fn hash(elems: impl IntoIterator<Item = Val>) -> Digest {
    FieldHash::new(perm()).hash_iter(elems).map(|v: Val| v.as_canonical_u32())
}

/// Commitment to one leaf, from its canonical encoding.
pub fn leaf_digest(encoded_leaf: &[u8]) -> Digest {
    let len = encoded_leaf.len() as u64;
    let header = [LEAF_TAG, (len & 0xff_ffff) as u32, ((len >> 24) & 0xff_ffff) as u32];
    let body = encoded_leaf.chunks(3).map(|c| {
        let v = c.iter().rev().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
        Val::from_u32(v)
    });
    hash(header.into_iter().map(Val::from_u32).chain(body))
}

/// Commitment to a fold node over segments `a..b` split at `m`.
pub fn node_digest(a: u32, m: u32, b: u32, left: &Digest, right: &Digest) -> Digest {
    let elems = [NODE_TAG, a, m, b]
        .into_iter()
        .chain(left.iter().copied())
        .chain(right.iter().copied())
        .map(Val::from_u32);
    hash(elems)
}

/// Recompute the accumulator over segments `start..end` along `splits` (pre-order split
/// points), with `leaf(i)` the digest of segment `i`. Iterative, so a deep (streaming)
/// fold cannot overflow the stack. Errors name the first inconsistency in the shape.
pub fn fold(start: u32, end: u32, splits: &[u32], leaf: &dyn Fn(u32) -> Digest) -> Result<Digest, String> {
    enum Step {
        Visit(u32, u32),
        Combine(u32, u32, u32),
    }
    if start >= end {
        return Err(format!("fold shape: empty range {start}..{end}"));
    }
    let mut stack = vec![Step::Visit(start, end)];
    let mut values: Vec<Digest> = Vec::new();
    let mut next = splits.iter();
    while let Some(step) = stack.pop() {
        match step {
            Step::Visit(a, b) if b - a == 1 => values.push(leaf(a)),
            Step::Visit(a, b) => {
                let &m = next.next().ok_or_else(|| format!("fold shape: no split recorded for {a}..{b}"))?;
                if m <= a || m >= b {
                    return Err(format!("fold shape: split {m} outside {a}..{b}"));
                }
                stack.push(Step::Combine(a, m, b));
                stack.push(Step::Visit(m, b));
                stack.push(Step::Visit(a, m));
            }
            Step::Combine(a, m, b) => {
                let right = values.pop().expect("right child evaluated");
                let left = values.pop().expect("left child evaluated");
                values.push(node_digest(a, m, b, &left, &right));
            }
        }
    }
    if next.next().is_some() {
        return Err("fold shape: more splits recorded than internal nodes".into());
    }
    Ok(values.pop().expect("one root value"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(i: u32) -> Digest {
        leaf_digest(&i.to_le_bytes())
    }

    #[test]
    fn fold_matches_manual_tree() {
        let l = |i| leaf(i);
        // ((0,1),2)
        let manual = node_digest(0, 2, 3, &node_digest(0, 1, 2, &l(0), &l(1)), &l(2));
        assert_eq!(fold(0, 3, &[2, 1], &l).unwrap(), manual);
        // (0,(1,2)) differs
        let other = fold(0, 3, &[1, 2], &l).unwrap();
        assert_ne!(other, manual);
        assert!(fold(0, 3, &[2], &l).is_err());
        assert!(fold(0, 3, &[2, 1, 1], &l).is_err());
        assert!(fold(0, 3, &[3, 1], &l).is_err());
    }

    #[test]
    fn leaf_digest_is_length_sensitive() {
        assert_ne!(leaf_digest(&[1, 0]), leaf_digest(&[1]));
        assert_ne!(leaf_digest(&[]), leaf_digest(&[0]));
    }
}
