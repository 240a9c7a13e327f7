//! The real fixture: mainnet block 19807080 as a zero_bin input (zk_evm's
//! `artifacts/witness_b19807080.json`), checked against the header from
//! `eth_getBlockByNumber` and against its own `checkpoint_state_trie_root`.

mod common;

use std::collections::HashSet;

use alloy_primitives::{Address, B256, Bloom, U256, address, b256, keccak256};
use common::{FIXTURE, HEADER, fixture_stream, read_json, referenced_hashes};
use proofline_zero_bin::{ZeroBinError, decode_compact, is_zero_bin, parse_input};

const ROOT: B256 = b256!("bbd66174555d27c88e285ff4797de401470d8d2486d15513ab36e491e864bca2");

fn b256_at(v: &serde_json::Value) -> B256 {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn the_fixture_decodes_to_its_checkpoint_root() {
    let json = read_json(FIXTURE);
    assert!(is_zero_bin(&json));
    let blocks = parse_input(&json).unwrap();
    assert_eq!(blocks.len(), 1);
    let block = &blocks[0];
    let checkpoint = b256_at(&json[0]["other_data"]["checkpoint_state_trie_root"]);
    assert_eq!(block.checkpoint_state_trie_root, checkpoint);
    assert_eq!(block.pre_state.root, checkpoint);
    assert_eq!(block.pre_state.root, ROOT);
    assert_eq!(block.pre_state.nodes.len(), 968);
    assert_eq!(block.pre_state.codes.len(), 15);
    // WETH's code (its code hash is in the trace's code_usage) is among the codes.
    let weth = b256!("d0a06b12ac47863b5c7be4185c2deaad1c61557033f56c7d4ea74429cbb25e23");
    assert!(block.pre_state.codes.iter().any(|c| keccak256(c) == weth));
}

#[test]
fn every_node_is_referenced_by_a_parent_or_is_the_root() {
    let pre = decode_compact(&fixture_stream(&read_json(FIXTURE))).unwrap();
    assert_eq!(keccak256(&pre.nodes[0]), pre.root, "the root comes first");
    let mut referenced = HashSet::new();
    for node in &pre.nodes {
        let header = alloy_rlp::Header::decode(&mut node.as_slice()).unwrap();
        assert!(header.list, "every node is an RLP list");
        referenced_hashes(node, &mut referenced);
    }
    let hashes: Vec<B256> = pre.nodes.iter().map(keccak256).collect();
    assert_eq!(hashes.iter().collect::<HashSet<_>>().len(), hashes.len(), "nodes are distinct");
    for (i, hash) in hashes.iter().enumerate().skip(1) {
        assert!(referenced.contains(hash), "node {i} ({hash}) is referenced by no node");
    }
    assert!(!referenced.contains(&pre.root));
    // Every code is some account's code hash.
    for code in &pre.codes {
        assert!(referenced.contains(&keccak256(code)), "code {} is no account's", keccak256(code));
    }
    let distinct: HashSet<B256> = pre.codes.iter().map(keccak256).collect();
    assert_eq!(distinct.len(), pre.codes.len());
}

#[test]
fn block_fields_match_the_header() {
    let block = parse_input(&read_json(FIXTURE)).unwrap().remove(0);
    let header = &read_json(HEADER)[0];
    let quantity =
        |key: &str| U256::from_str_radix(header[key].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(block.number, 19_807_080);
    assert_eq!(block.cur_hash, b256_at(&header["hash"]));
    assert_eq!(block.cur_hash, b256!("0b4c5b498320e5858e7445a5af10658ffee39c9a39de22c81452de5421f63464"));
    assert_eq!(block.prev_hashes.len(), 256);
    assert_eq!(*block.prev_hashes.last().unwrap(), b256_at(&header["parentHash"]));
    let meta = &block.meta;
    assert_eq!(meta.beneficiary, address!("95222290dd7278aa3ddd389cc1e1d165cc4bafe5"));
    assert_eq!(U256::from(meta.timestamp), quantity("timestamp"));
    assert_eq!(U256::from(meta.gas_limit), quantity("gasLimit"));
    assert_eq!(U256::from(meta.gas_used), quantity("gasUsed"));
    assert_eq!(meta.base_fee, quantity("baseFeePerGas"));
    assert_eq!(meta.difficulty, U256::ZERO);
    assert_eq!(meta.random, b256_at(&header["mixHash"]));
    assert_eq!(meta.chain_id, 1);
    assert_eq!((meta.blob_gas_used, meta.excess_blob_gas), (Some(0), Some(0)));
    assert_eq!(meta.parent_beacon_block_root, Some(b256_at(&header["parentBeaconBlockRoot"])));
    assert_eq!(meta.bloom, header["logsBloom"].as_str().unwrap().parse::<Bloom>().unwrap());
    let want: Vec<(Address, U256)> = header["withdrawals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["address"].as_str().unwrap().parse().unwrap(),
                U256::from_str_radix(&w["amount"].as_str().unwrap()[2..], 16).unwrap(),
            )
        })
        .collect();
    assert_eq!(block.withdrawals.len(), 16);
    assert_eq!(block.withdrawals, want);
}

#[test]
fn a_tampered_hash_operand_fails_the_checkpoint_check() {
    let mut json = read_json(FIXTURE);
    let mut bytes = fixture_stream(&json);
    // The stream opens with HASH (0x03) and its 32-byte operand.
    assert_eq!(bytes[..2], [0x01, 0x03]);
    bytes[10] ^= 0x01;
    json[0]["block_trace"]["trie_pre_images"]["combined"]["compact"] =
        format!("0x{}", hex::encode(&bytes)).into();
    let err = parse_input(&json).unwrap_err();
    let ZeroBinError::RootMismatch { number, computed, expected } = &err else { panic!("{err}") };
    assert_eq!((*number, *expected), (19_807_080, ROOT));
    assert_ne!(*computed, ROOT);
    let message = err.to_string();
    assert!(message.starts_with("block 19807080: the compact pre-state's trie root 0x"), "{message}");
    assert!(message.contains("!= other_data.checkpoint_state_trie_root 0xbbd66174"), "{message}");
    assert!(message.contains("Inconsistent pre-state for first block"), "{message}");
}

#[test]
fn a_tampered_code_changes_the_root() {
    let bytes = fixture_stream(&read_json(FIXTURE));
    // The first CODE: opcode 0x04, CBOR byte string of 6140 (0x17fc) bytes.
    let at = bytes.windows(4).position(|w| w == [0x04, 0x59, 0x17, 0xfc]).expect("the first CODE");
    let mut tampered = bytes.clone();
    tampered[at + 100] ^= 0x40;
    let pre = decode_compact(&tampered).unwrap();
    assert_ne!(pre.root, ROOT);
    assert!(pre.codes.contains(&tampered[at + 4..at + 4 + 6140].to_vec()));
}

#[test]
fn truncated_and_corrupted_streams_in_the_json_name_their_path() {
    let mut json = read_json(FIXTURE);
    let bytes = fixture_stream(&json);
    let compact = &mut json[0]["block_trace"]["trie_pre_images"]["combined"]["compact"];
    *compact = format!("0x{}", hex::encode(&bytes[..1000])).into();
    let err = parse_input(&json).unwrap_err();
    let ZeroBinError::Compact { path, source } = &err else { panic!("{err}") };
    assert_eq!(path, "[0].block_trace.trie_pre_images.combined.compact");
    assert!(source.offset <= 1000, "{err}");
    assert!(
        err.to_string().starts_with("[0].block_trace.trie_pre_images.combined.compact: compact stream byte ")
    );

    let mut unknown = bytes.clone();
    unknown[1] = 0x09;
    let err = decode_compact(&unknown).unwrap_err();
    assert_eq!(err.to_string(), "compact stream byte 1 (instruction 0): unknown opcode 0x09");
}

/// Truncations and byte flips never panic. A truncation is always an error; a flip is an
/// error, or changes the root (which the checkpoint check rejects), or leaves the decoded
/// pre-state identical (a flip in an operand nothing depends on, such as the code length
/// jerigon writes as u64::MAX next to a code given by hash).
#[test]
fn truncations_and_byte_flips_never_panic() {
    let bytes = fixture_stream(&read_json(FIXTURE));
    let original = decode_compact(&bytes).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for len in (0..120).map(|_| next(bytes.len())).chain([0, 1, 2, 33, bytes.len() - 1]) {
        let err = decode_compact(&bytes[..len]).expect_err("a truncated stream must fail");
        assert!(err.offset <= len, "truncated at {len}: {err}");
    }
    let (mut errors, mut changed, mut neutral) = (0, 0, 0);
    for _ in 0..240 {
        let (pos, mask) = (next(bytes.len()), 1u8 << next(8));
        let mut flipped = bytes.clone();
        flipped[pos] ^= mask;
        match decode_compact(&flipped) {
            Err(e) => {
                assert!(e.offset <= flipped.len(), "{e}");
                errors += 1;
            }
            Ok(pre) if pre.root != original.root => changed += 1,
            Ok(pre) => {
                assert_eq!(pre, original, "flip {mask:#x} at {pos} changed the pre-state but not its root");
                neutral += 1;
            }
        }
    }
    assert!(errors > 0 && changed > 0, "errors {errors}, changed roots {changed}, neutral {neutral}");
    assert!(neutral < 24, "{neutral} of 240 flips changed nothing");
}
