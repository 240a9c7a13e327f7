//! Reading real block witnesses (the shared fixtures and our example block), and the
//! error messages users see for bad inputs.

use alloy_primitives::{B256, b256};
use proofline_keccak::witness::{BlockWitness, WitnessFormat, parse_block_witness};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../../shared/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn example() -> Vec<u8> {
    let path = format!("{}/../../examples/example-block.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

const MAINNET_HASH: B256 = b256!("0x0497f69549701d578c67a43951f9e4fcb92b1691b9f6bbdfa63a17bc41d3971e");
const MAINNET_PARENT_STATE_ROOT: B256 =
    b256!("0xbe3cc2842dba8d8161325f9a91fd69f2c14a12e2ce8a3ec038a1d95e7bc767b7");

fn parse(bytes: &[u8]) -> BlockWitness {
    parse_block_witness(bytes).unwrap_or_else(|e| panic!("should parse: {e}"))
}

/// The error message for `input`, which must fail.
fn error_of(input: &[u8]) -> String {
    match parse_block_witness(input) {
        Ok(w) => panic!("should fail, parsed block {}", w.number),
        Err(e) => e.to_string(),
    }
}

/// The canonical fixture as JSON, edited by `edit`, then parsed; its error message.
fn canonical_error(edit: impl FnOnce(&mut Value)) -> String {
    let mut doc: Value = serde_json::from_slice(&fixture("mainnet-22615247.canonical.json")).unwrap();
    edit(&mut doc);
    error_of(&serde_json::to_vec(&doc).unwrap())
}

#[test]
fn ethrex_replay_cache() {
    let w = parse(&fixture("hoodi-1265656.ethrex-replay.json"));
    assert_eq!(w.format, WitnessFormat::EthrexReplay);
    assert_eq!(w.number, 1_265_656);
    assert_eq!(w.hash, b256!("0xac77c202b2b33da757f785a4c240333c7d148bc2558f19c483e42fe3ca1ce6db"));
    assert_eq!(w.parent_hash, b256!("0x5ec43aa09c9145c93f7bc57a0d4e19e6eacdfe1b4b053e48825f9c88e120c62b"));
    assert!(w.parent_state_root.to_string().starts_with("0x4bec425c"));
    assert!(w.parent_state_root.to_string().ends_with("3eaf"));
    assert_eq!((w.state.len(), w.codes.len(), w.keys.len(), w.headers.len()), (1705, 22, 422, 6));
}

#[test]
fn zkpig_prover_input() {
    let w = parse(&fixture("mainnet-22615247.zkpig.json"));
    assert_eq!(w.format, WitnessFormat::Zkpig);
    assert_eq!(w.number, 22_615_247);
    assert_eq!(w.hash, MAINNET_HASH);
    assert_eq!(w.parent_state_root, MAINNET_PARENT_STATE_ROOT);
    assert_eq!((w.state.len(), w.codes.len(), w.keys.len(), w.headers.len()), (868, 30, 0, 1));
}

#[test]
fn canonical_fixture_matches_zkpig() {
    let c = parse(&fixture("mainnet-22615247.canonical.json"));
    assert_eq!(c.format, WitnessFormat::Canonical);
    assert_eq!(c.number, 22_615_247);
    assert_eq!(c.hash, MAINNET_HASH);
    assert_eq!(c.parent_state_root, MAINNET_PARENT_STATE_ROOT);
    // Same block and witness as the ZK-PIG file it was derived from: our JSON-header RLP
    // encoding agrees byte for byte with the fixture's.
    let z = parse(&fixture("mainnet-22615247.zkpig.json"));
    assert_eq!(BlockWitness { format: WitnessFormat::Canonical, ..z }, c);
}

#[test]
fn example_block() {
    let w = parse(&example());
    assert_eq!(w.format, WitnessFormat::Canonical);
    let perms = w.permutation_count();
    assert!((1500..=2500).contains(&perms), "{perms} permutations");
}

#[test]
fn canonical_round_trip() {
    for name in
        ["hoodi-1265656.ethrex-replay.json", "mainnet-22615247.zkpig.json", "mainnet-22615247.canonical.json"]
    {
        let w = parse(&fixture(name));
        let again = parse(w.to_canonical_json().as_bytes());
        assert_eq!(again.to_canonical_json(), w.to_canonical_json(), "{name}");
        assert_eq!(again, BlockWitness { format: WitnessFormat::Canonical, ..w }, "{name}");
    }
    let ex = example();
    assert_eq!(parse(&ex).to_canonical_json().as_bytes(), ex.as_slice());
}

#[test]
fn hex_with_or_without_prefix() {
    let mut doc: Value = serde_json::from_slice(&fixture("mainnet-22615247.canonical.json")).unwrap();
    for item in doc["witness"]["state"].as_array_mut().unwrap() {
        let s = item.as_str().unwrap().trim_start_matches("0x").to_uppercase();
        *item = Value::String(s);
    }
    let w = parse(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(w.state.len(), 868);
}

#[test]
fn malformed_json() {
    assert_eq!(
        error_of(b"{\n  \"block\": {\n    \"number\" 1\n}"),
        "malformed JSON at line 3 column 14: expected `:`"
    );
    assert_eq!(error_of(b"   \n"), "empty input: expected a JSON block witness");
}

#[test]
fn unknown_format() {
    let msg = error_of(br#"{"foo": 1}"#);
    assert!(msg.starts_with("unrecognized witness format: expected"), "{msg}");
    assert!(msg.ends_with("top-level fields here: [foo]"), "{msg}");
    assert_eq!(error_of(b"[1, 2]"), "top level: expected an object, got an array");
}

#[test]
fn missing_field() {
    let msg = canonical_error(|d| {
        d["witness"].as_object_mut().unwrap().remove("headers");
    });
    assert_eq!(msg, "missing field witness.headers");
    let msg = canonical_error(|d| {
        d["block"].as_object_mut().unwrap().remove("hash");
    });
    assert_eq!(msg, "missing field block.hash");
}

#[test]
fn not_hex() {
    let msg = canonical_error(|d| {
        let s = d["witness"]["state"][17].as_str().unwrap().to_string();
        d["witness"]["state"][17] = json!(format!("{s}0"));
    });
    assert_eq!(msg, "witness.state[17]: not hex (odd length)");
    let msg = canonical_error(|d| d["block"]["parentHash"] = json!("0xzz"));
    assert_eq!(msg, "block.parentHash: not hex (invalid character 'z' at offset 2)");
    let msg = canonical_error(|d| d["witness"]["codes"][0] = json!(42));
    assert_eq!(msg, "witness.codes[0]: expected a hex string, got a number");
}

#[test]
fn wrong_hash_length() {
    let msg = canonical_error(|d| {
        let s = d["block"]["hash"].as_str().unwrap();
        d["block"]["hash"] = json!(s[..s.len() - 2].to_string());
    });
    assert_eq!(msg, "block.hash: expected 32 bytes, got 31");
}

#[test]
fn bad_json_header_field_names_its_path() {
    let mut doc: Value = serde_json::from_slice(&fixture("mainnet-22615247.zkpig.json")).unwrap();
    doc["blocks"][0]["header"]["gasLimit"] = json!("0xnope");
    let msg = error_of(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(msg, "blocks[0].header.gasLimit: not a hex quantity: \"0xnope\"");
    doc["witness"]["ancestors"][0]["stateRoot"] = json!("0x00");
    doc["blocks"][0]["header"]["gasLimit"] = json!("0x2255100");
    let msg = error_of(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(msg, "witness.ancestors[0].stateRoot: expected 32 bytes, got 1");
}

#[test]
fn empty_state() {
    let msg = canonical_error(|d| d["witness"]["state"] = json!([]));
    assert_eq!(msg, "empty witness: witness.state has no nodes");
    let msg = canonical_error(|d| d["witness"]["headers"] = json!([]));
    assert_eq!(msg, "empty witness: witness.headers has no headers (the parent header is required)");
}

#[test]
fn header_not_hashing_to_claimed_hash() {
    let msg = canonical_error(|d| {
        // Change one byte of the gas used, keeping the RLP well-formed.
        let rlp = d["block"]["headerRlp"].as_str().unwrap().to_string();
        let tampered = rlp.replacen("831450d5", "831450d6", 1);
        assert_ne!(tampered, rlp);
        d["block"]["headerRlp"] = json!(tampered);
    });
    assert!(
        msg.starts_with("block header does not hash to the claimed block hash: keccak(header) = 0x"),
        "{msg}"
    );
    assert!(
        msg.ends_with(", claimed 0x0497f69549701d578c67a43951f9e4fcb92b1691b9f6bbdfa63a17bc41d3971e"),
        "{msg}"
    );
}

#[test]
fn state_root_must_be_in_the_witness() {
    let msg = canonical_error(|d| {
        let state = d["witness"]["state"].as_array_mut().unwrap();
        let root = MAINNET_PARENT_STATE_ROOT;
        state.retain(|n| {
            let bytes = hex::decode(n.as_str().unwrap().trim_start_matches("0x")).unwrap();
            alloy_primitives::keccak256(bytes) != root
        });
    });
    assert_eq!(
        msg,
        "parent state root 0xbe3cc2842dba8d8161325f9a91fd69f2c14a12e2ce8a3ec038a1d95e7bc767b7 \
         (from witness.headers[0].stateRoot) is not the keccak of any of the 867 nodes in witness.state"
    );
}

#[test]
fn parent_header_must_be_the_parent() {
    let msg = canonical_error(|d| d["block"]["parentHash"] = json!(format!("0x{}", "11".repeat(32))));
    assert!(msg.starts_with("block.parentHash is 0x1111"), "{msg}");
    assert!(msg.contains("but the parentHash in block.headerRlp is 0x11e63a1d"), "{msg}");
}

#[test]
fn example_state_is_one_complete_trie() {
    use alloy_consensus::TrieAccount;
    use alloy_trie::nodes::TrieNode;
    use std::collections::HashSet;

    let w = parse(&example());
    let digests: HashSet<B256> = w.state.iter().map(alloy_primitives::keccak256).collect();
    let (mut referenced, mut leaves) = (HashSet::new(), 0);
    for node in &w.state {
        match alloy_rlp::decode_exact::<TrieNode>(node).expect("every node decodes") {
            TrieNode::Branch(b) => referenced.extend(b.stack.iter().filter_map(|c| c.as_hash())),
            TrieNode::Extension(e) => referenced.extend(e.child.as_hash()),
            TrieNode::Leaf(l) => {
                alloy_rlp::decode_exact::<TrieAccount>(&l.value).expect("leaves hold accounts");
                leaves += 1;
            }
            TrieNode::EmptyRoot => panic!("empty node in the witness"),
        }
    }
    // Every referenced node is present, and only the root is referenced by none.
    assert!(referenced.is_subset(&digests));
    let unreferenced: Vec<_> = digests.difference(&referenced).collect();
    assert_eq!(unreferenced, vec![&w.parent_state_root]);
    assert_eq!(leaves, w.keys.len());
}
