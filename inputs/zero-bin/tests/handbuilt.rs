//! Hand-built compact streams whose roots are checked against `alloy_trie::HashBuilder`
//! (an independent MPT implementation) and whose node lists are checked by hand.

mod common;

use alloy_primitives::{B256, KECCAK256_EMPTY, U256, keccak256};
use common::{Entry, Stream, account_rlp, nibbles_of, reference_root};
use proofline_zero_bin::{EMPTY_ROOT_HASH, decode_compact};

fn key(seed: &str) -> Vec<u8> {
    nibbles_of(keccak256(seed.as_bytes()).as_slice())
}

/// A 64-nibble key starting with `first`.
fn key_from(first: &[u8], seed: &str) -> Vec<u8> {
    let mut k = first.to_vec();
    k.extend_from_slice(&key(seed)[first.len()..]);
    k
}

fn slot_payload(value: &[u8]) -> Vec<u8> {
    alloy_rlp::encode(U256::from_be_slice(value))
}

#[test]
fn a_single_account_leaf() {
    let k = key("alice");
    let stream = Stream::default().account(&k, 7, U256::from(1_000_000u64), None, false);
    let pre = decode_compact(&stream.0).unwrap();
    let want = account_rlp(7, 1_000_000, EMPTY_ROOT_HASH, KECCAK256_EMPTY);
    let root = reference_root(vec![(k, Entry::Leaf(want))]);
    assert_eq!(pre.root, root);
    assert_eq!(pre.nodes.len(), 1);
    assert_eq!(keccak256(&pre.nodes[0]), root);
    assert!(pre.codes.is_empty());
}

#[test]
fn a_branch_with_two_account_leaves() {
    let (k1, k2) = (key_from(&[1], "one"), key_from(&[5], "five"));
    let stream = Stream::default()
        .account(&k1[1..], 1, U256::from(10), None, false)
        .account(&k2[1..], 0, U256::from(20), None, false)
        .branch((1 << 1) | (1 << 5));
    let pre = decode_compact(&stream.0).unwrap();
    let leaf1 = account_rlp(1, 10, EMPTY_ROOT_HASH, KECCAK256_EMPTY);
    let leaf2 = account_rlp(0, 20, EMPTY_ROOT_HASH, KECCAK256_EMPTY);
    let root = reference_root(vec![(k2, Entry::Leaf(leaf2)), (k1, Entry::Leaf(leaf1))]);
    assert_eq!(pre.root, root);
    // The branch, then its two leaves in nibble order (both over 32 bytes).
    assert_eq!(pre.nodes.len(), 3);
    assert_eq!(keccak256(&pre.nodes[0]), root);
    let branch = &pre.nodes[0];
    for leaf in &pre.nodes[1..] {
        let hash = keccak256(leaf);
        assert!(branch.windows(32).any(|w| w == hash.as_slice()), "leaf not referenced by the branch");
    }
}

#[test]
fn an_account_with_storage_and_code() {
    let k = key("contract");
    let (s1, s2) = (key_from(&[0xa], "slot1"), key_from(&[0xc], "slot2"));
    let (v1, v2) = (vec![0x01], vec![0xff; 32]);
    let code = hex::decode("6080604052600080fd").unwrap();
    let stream = Stream::default()
        .code(&code)
        .leaf(&s1[1..], &v1)
        .leaf(&s2[1..], &v2)
        .branch((1 << 0xa) | (1 << 0xc))
        .account(&k, 1, U256::ZERO, Some(code.len() as u64), true);
    let pre = decode_compact(&stream.0).unwrap();

    let storage_root =
        reference_root(vec![(s1, Entry::Leaf(slot_payload(&v1))), (s2, Entry::Leaf(slot_payload(&v2)))]);
    let account = account_rlp(1, 0, storage_root, keccak256(&code));
    let root = reference_root(vec![(k, Entry::Leaf(account))]);
    assert_eq!(pre.root, root);
    assert_eq!(pre.codes, vec![code]);
    // The account leaf (root), the storage root branch, the two storage leaves.
    assert_eq!(pre.nodes.len(), 4);
    assert_eq!(keccak256(&pre.nodes[0]), root);
    assert_eq!(keccak256(&pre.nodes[1]), storage_root);
}

#[test]
fn hashed_subtries_an_extension_and_code_and_storage_by_hash() {
    let h0 = keccak256("a hashed-out subtrie");
    let (a1, a2) = (key_from(&[3, 9, 9, 1], "a1"), key_from(&[3, 9, 9, 8], "a2"));
    let a3 = key_from(&[0xf], "a3");
    let (code_hash, storage_root) = (keccak256("some code"), keccak256("some storage"));
    let stream = Stream::default()
        .hash(h0)
        .account(&a1[4..], 0, U256::from(1), None, false)
        .account(&a2[4..], 0, U256::from(2), None, false)
        .branch((1 << 1) | (1 << 8))
        .extension(&[9, 9])
        .hash(code_hash)
        .hash(storage_root)
        .account(&a3[1..], 0, U256::from(5), Some(u64::MAX), true)
        .branch(1 | (1 << 3) | (1 << 0xf));
    let pre = decode_compact(&stream.0).unwrap();
    let root = reference_root(vec![
        (vec![0], Entry::Hashed(h0)),
        (a1, Entry::Leaf(account_rlp(0, 1, EMPTY_ROOT_HASH, KECCAK256_EMPTY))),
        (a2, Entry::Leaf(account_rlp(0, 2, EMPTY_ROOT_HASH, KECCAK256_EMPTY))),
        (a3, Entry::Leaf(account_rlp(0, 5, storage_root, code_hash))),
    ]);
    assert_eq!(pre.root, root);
    // root branch, extension, inner branch, leaf a1, leaf a2, leaf a3 (pre-order)
    assert_eq!(pre.nodes.len(), 6);
    // The extension: [hex_prefix([9, 9]) = 0x0099, hash of the inner branch].
    assert_eq!(pre.nodes[1][..4], [0xe4, 0x82, 0x00, 0x99]);
    assert!(pre.codes.is_empty(), "a code given by hash is not a code");
}

#[test]
fn tiny_nodes_at_the_bottom_are_embedded() {
    // Two slots that differ only in the last nibble: an extension of 63 nibbles over a
    // branch whose leaves have empty keys (Erigon writes those keys as the lone byte 0x10).
    let (mut s1, mut s2) = (vec![0u8; 63], vec![0u8; 63]);
    s1.push(1);
    s2.push(2);
    let k = key("bottom");
    let stream = Stream::default()
        .leaf(&[], &[5])
        .leaf(&[], &[6])
        .branch((1 << 1) | (1 << 2))
        .extension(&[0; 63])
        .account(&k, 1, U256::ZERO, None, true);
    assert!(stream.0.windows(3).any(|w| w == [0x00, 0x41, 0x10]), "empty leaf key written as 0x10");
    let pre = decode_compact(&stream.0).unwrap();
    let storage_root =
        reference_root(vec![(s1, Entry::Leaf(slot_payload(&[5]))), (s2, Entry::Leaf(slot_payload(&[6])))]);
    let root = reference_root(vec![(k, Entry::Leaf(account_rlp(1, 0, storage_root, KECCAK256_EMPTY)))]);
    assert_eq!(pre.root, root);
    // The account leaf and the storage root (the extension); the branch and leaves
    // under 32 bytes are embedded in it.
    assert_eq!(pre.nodes.len(), 2);
    assert_eq!(keccak256(&pre.nodes[1]), storage_root);
}

#[test]
fn empty_storage_and_an_empty_state() {
    let k = key("empty");
    let with_flag = Stream::default().empty_root().account(&k, 0, U256::from(1), None, true);
    let without = Stream::default().account(&k, 0, U256::from(1), None, false);
    let want = reference_root(vec![(k, Entry::Leaf(account_rlp(0, 1, EMPTY_ROOT_HASH, KECCAK256_EMPTY)))]);
    assert_eq!(decode_compact(&with_flag.0).unwrap().root, want);
    assert_eq!(decode_compact(&without.0).unwrap().root, want);

    let empty = decode_compact(&Stream::default().empty_root().0).unwrap();
    assert_eq!(empty.root, EMPTY_ROOT_HASH);
    assert_eq!(empty.nodes, vec![vec![0x80]]);
    assert_eq!(keccak256(&empty.nodes[0]), EMPTY_ROOT_HASH);
}

#[test]
fn identical_storage_tries_and_codes_are_listed_once() {
    let (k1, k2) = (key_from(&[2], "twin1"), key_from(&[4], "twin2"));
    let slot = key("slot");
    let code = vec![0x60, 0x01];
    let twin =
        |s: Stream, k: &[u8]| s.code(&code).leaf(&slot, &[9]).account(&k[1..], 1, U256::ZERO, Some(2), true);
    let stream = twin(twin(Stream::default(), &k1), &k2).branch((1 << 2) | (1 << 4));
    let pre = decode_compact(&stream.0).unwrap();
    let storage_root = reference_root(vec![(slot.clone(), Entry::Leaf(slot_payload(&[9])))]);
    let account = account_rlp(1, 0, storage_root, keccak256(&code));
    let root = reference_root(vec![(k1, Entry::Leaf(account.clone())), (k2, Entry::Leaf(account))]);
    assert_eq!(pre.root, root);
    assert_eq!(pre.codes, vec![code]);
    // branch, leaf 1, the shared storage root, leaf 2
    assert_eq!(pre.nodes.len(), 4);
    let distinct: std::collections::HashSet<B256> = pre.nodes.iter().map(keccak256).collect();
    assert_eq!(distinct.len(), 4);
    assert_eq!(keccak256(&pre.nodes[2]), storage_root);
}

#[test]
fn version_zero_is_accepted_like_zk_evm() {
    let k = key("v0");
    let mut stream = Stream::default().account(&k, 0, U256::from(3), None, false).0;
    let v1 = decode_compact(&stream).unwrap();
    stream[0] = 0;
    assert_eq!(decode_compact(&stream).unwrap(), v1);
}
