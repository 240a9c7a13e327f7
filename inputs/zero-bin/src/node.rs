//! RLP encodings of Merkle-Patricia trie nodes (Ethereum yellow paper, appendix D), as
//! pure functions of their parts.
//!
//! - leaf: `[hex_prefix(path, leaf), payload]`, the payload being `RLP(slot value)` in a
//!   storage trie and `RLP([nonce, balance, storage_root, code_hash])` in the state trie;
//! - extension: `[hex_prefix(path, extension), child reference]`;
//! - branch: `[child reference or "" x 16, ""]` (no values in hashed-key tries).
//!
//! A child is referenced by its RLP itself when that is shorter than 32 bytes (embedded),
//! otherwise by `RLP(keccak256(child))`.

use alloy_primitives::{B256, U256, keccak256};
use alloy_rlp::Header;

/// `RLP("")`: an absent branch child.
const EMPTY_STRING: u8 = 0x80;

/// Hex-prefix encoding of a nibble path (each nibble 0..=15).
pub(crate) fn hex_prefix(nibbles: &[u8], leaf: bool) -> Vec<u8> {
    let flag = if leaf { 2 } else { 0 };
    let odd = nibbles.len() % 2 == 1;
    let mut out = Vec::with_capacity(nibbles.len() / 2 + 1);
    let rest = if odd {
        out.push(((flag + 1) << 4) | nibbles[0]);
        &nibbles[1..]
    } else {
        out.push(flag << 4);
        nibbles
    };
    out.extend(rest.chunks_exact(2).map(|pair| (pair[0] << 4) | pair[1]));
    out
}

/// How a parent refers to a child node with this RLP.
pub(crate) fn reference(node_rlp: &[u8]) -> Vec<u8> {
    if node_rlp.len() < 32 { node_rlp.to_vec() } else { alloy_rlp::encode(keccak256(node_rlp)) }
}

/// A reference to a node known only by its hash.
pub(crate) fn hash_reference(hash: &B256) -> Vec<u8> {
    alloy_rlp::encode(hash)
}

fn list(items: &[&[u8]]) -> Vec<u8> {
    let payload_length = items.iter().map(|i| i.len()).sum();
    let mut out = Vec::with_capacity(payload_length + 3);
    Header { list: true, payload_length }.encode(&mut out);
    for item in items {
        out.extend_from_slice(item);
    }
    out
}

/// A leaf node; `payload` is the leaf's value before its final RLP string wrapping.
pub(crate) fn leaf(path: &[u8], payload: &[u8]) -> Vec<u8> {
    let path = alloy_rlp::encode(&hex_prefix(path, true)[..]);
    list(&[&path, &alloy_rlp::encode(payload)])
}

/// An extension node over a child given by its [`reference`].
pub(crate) fn extension(path: &[u8], child_ref: &[u8]) -> Vec<u8> {
    let path = alloy_rlp::encode(&hex_prefix(path, false)[..]);
    list(&[&path, child_ref])
}

/// A branch node; `children[i]` is the [`reference`] of child i.
pub(crate) fn branch(children: &[Option<Vec<u8>>; 16]) -> Vec<u8> {
    let empty = [EMPTY_STRING];
    let mut items: Vec<&[u8]> = children.iter().map(|c| c.as_deref().unwrap_or(&empty)).collect();
    items.push(&empty);
    list(&items)
}

/// The leaf payload of a storage slot: `RLP(trimmed big-endian value)`.
pub(crate) fn storage_payload(value: &[u8]) -> Vec<u8> {
    alloy_rlp::encode(value)
}

/// The leaf payload of an account: `RLP([nonce, balance, storage_root, code_hash])`.
pub(crate) fn account_payload(nonce: u64, balance: U256, storage_root: B256, code_hash: B256) -> Vec<u8> {
    let (nonce, balance) = (alloy_rlp::encode(nonce), alloy_rlp::encode(balance));
    let (storage_root, code_hash) = (alloy_rlp::encode(storage_root), alloy_rlp::encode(code_hash));
    list(&[&nonce, &balance, &storage_root, &code_hash])
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;

    #[test]
    fn hex_prefix_matches_the_yellow_paper() {
        assert_eq!(hex_prefix(&[1, 2, 3, 4, 5], false), hex!("112345"));
        assert_eq!(hex_prefix(&[0, 1, 2, 3, 4, 5], false), hex!("00012345"));
        assert_eq!(hex_prefix(&[0xf, 1, 0xc, 0xb, 8], true), hex!("3f1cb8"));
        assert_eq!(hex_prefix(&[0, 0xf, 1, 0xc, 0xb, 8], true), hex!("200f1cb8"));
        assert_eq!(hex_prefix(&[], true), hex!("20"));
    }

    #[test]
    fn small_nodes_are_embedded_large_ones_hashed() {
        let small = leaf(&[1], &storage_payload(&[7]));
        assert_eq!(small, hex!("c23107"));
        assert_eq!(reference(&small), small);
        let big = leaf(&[1; 64], &storage_payload(&[7]));
        assert!(big.len() >= 32);
        assert_eq!(reference(&big), alloy_rlp::encode(keccak256(&big)));
        let mut children: [Option<Vec<u8>>; 16] = Default::default();
        children[3] = Some(small.clone());
        let b = branch(&children);
        assert_eq!(b.len(), 1 + small.len() + 16);
        assert_eq!(&b[4..4 + small.len()], &small[..]);
    }

    #[test]
    fn empty_account_payload() {
        let empty_root =
            alloy_primitives::b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");
        let p = account_payload(0, U256::ZERO, empty_root, keccak256([]));
        assert_eq!(p.len(), 70);
        assert_eq!(&p[..3], &hex!("f84480"));
    }
}
