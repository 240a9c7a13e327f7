//! The JSON layer: detection, single-object inputs, multi-block chains, and errors that
//! name their JSON path. Inputs are the real fixture with one thing changed.

mod common;

use common::{FIXTURE, read_json};
use proofline_zero_bin::{ZeroBinError, is_zero_bin, parse_input};
use serde_json::{Value, json};

fn fixture() -> Value {
    read_json(FIXTURE)
}

fn error_of(json: &Value) -> String {
    parse_input(json).expect_err("the input should be rejected").to_string()
}

#[test]
fn detection() {
    let json = fixture();
    assert!(is_zero_bin(&json));
    assert!(is_zero_bin(&json[0]), "a single block object");
    assert!(!is_zero_bin(&json!({"blocks": []})));
    assert!(!is_zero_bin(&json!([])));
    assert!(!is_zero_bin(&json!([{"block_trace": {}}])));
    assert!(!is_zero_bin(&json!([json[0].clone(), {"other_data": {}}])));
    assert!(!is_zero_bin(&json!("0x01")));
}

#[test]
fn a_single_block_object_is_a_one_block_input() {
    let json = fixture();
    assert_eq!(parse_input(&json[0]).unwrap(), parse_input(&json).unwrap());
    // Paths in a single object start at its fields.
    let mut single = json[0].clone();
    single["other_data"]["b_data"]["b_hashes"]["cur_hash"] = json!("0x12");
    assert_eq!(
        error_of(&single),
        "other_data.b_data.b_hashes.cur_hash: expected 32 bytes (64 hex digits), found 2 hex digits"
    );
}

#[test]
fn top_level_shapes() {
    assert!(matches!(parse_input(&json!([])), Err(ZeroBinError::NoBlocks)));
    assert!(matches!(parse_input(&json!(3)), Err(ZeroBinError::NotZeroBin { found: "a number" })));
    assert_eq!(error_of(&json!([{"block_trace": {}}])), "[0].other_data: missing");
}

#[test]
fn prev_hashes_must_be_256_hashes() {
    let mut json = fixture();
    json[0]["other_data"]["b_data"]["b_hashes"]["prev_hashes"].as_array_mut().unwrap().pop();
    assert_eq!(
        error_of(&json),
        "[0].other_data.b_data.b_hashes.prev_hashes: expected 256 hashes (zero_bin's BLOCKHASH window, zero-filled before block 256), found 255"
    );
    let mut json = fixture();
    json[0]["other_data"]["b_data"]["b_hashes"]["prev_hashes"][3] = json!("0xnothex");
    let message = error_of(&json);
    assert!(message.starts_with("[0].other_data.b_data.b_hashes.prev_hashes[3]: "), "{message}");
}

#[test]
fn fields_are_typed_with_paths() {
    let cases = [
        (
            "/other_data/checkpoint_state_trie_root",
            Value::Null,
            "[0].other_data.checkpoint_state_trie_root: missing",
        ),
        (
            "/other_data/b_data/b_meta/block_number",
            json!("0x1ffffffffffffffff"),
            "[0].other_data.b_data.b_meta.block_number: 0x1ffffffffffffffff does not fit in 64 bits",
        ),
        (
            "/other_data/b_data/b_meta/block_timestamp",
            json!(true),
            "[0].other_data.b_data.b_meta.block_timestamp: expected a 0x-prefixed hex quantity, found a boolean",
        ),
        (
            "/other_data/b_data/b_meta/block_bloom",
            json!(["0x0"]),
            "[0].other_data.b_data.b_meta.block_bloom: expected 8 words of 256 bits, found 1",
        ),
        (
            "/other_data/b_data/withdrawals/2",
            json!(["0x00"]),
            "[0].other_data.b_data.withdrawals[2]: expected [address, amount], found 1 elements",
        ),
        (
            "/other_data/b_data/withdrawals/0/0",
            json!("0x1234"),
            "[0].other_data.b_data.withdrawals[0][0]: expected 20 bytes (40 hex digits), found 4 hex digits",
        ),
        (
            "/block_trace/trie_pre_images/combined/compact",
            json!("0x0"),
            "[0].block_trace.trie_pre_images.combined.compact: invalid hex: Odd number of digits",
        ),
        (
            "/block_trace/trie_pre_images/combined/compact",
            json!("01"),
            "[0].block_trace.trie_pre_images.combined.compact: expected 0x-prefixed hex",
        ),
    ];
    for (pointer, value, want) in cases {
        let mut json = fixture();
        *json[0].pointer_mut(pointer).unwrap() = value;
        assert_eq!(error_of(&json), want);
    }
    let mut json = fixture();
    json[0]["block_trace"]["trie_pre_images"] = json!({"separate": {}});
    assert_eq!(
        error_of(&json),
        "[0].block_trace.trie_pre_images: `separate` pre-images are not supported, only `combined.compact`"
    );
    // Optional Cancun fields may be absent; withdrawals too.
    let mut json = fixture();
    let meta = json[0]["other_data"]["b_data"]["b_meta"].as_object_mut().unwrap();
    meta.remove("parent_beacon_block_root");
    meta.remove("block_blob_gas_used");
    json[0]["other_data"]["b_data"].as_object_mut().unwrap().remove("withdrawals");
    let block = parse_input(&json).unwrap().remove(0);
    assert_eq!((block.meta.parent_beacon_block_root, block.meta.blob_gas_used), (None, None));
    assert!(block.withdrawals.is_empty());
}

#[test]
fn a_wrong_checkpoint_is_rejected() {
    let mut json = fixture();
    json[0]["other_data"]["checkpoint_state_trie_root"] =
        json!("0x1111111111111111111111111111111111111111111111111111111111111111");
    assert_eq!(
        error_of(&json),
        "block 19807080: the compact pre-state's trie root 0xbbd66174555d27c88e285ff4797de401470d8d2486d15513ab36e491e864bca2 != other_data.checkpoint_state_trie_root 0x1111111111111111111111111111111111111111111111111111111111111111 (zero_bin rejects this as \"Inconsistent pre-state for first block\")"
    );
}

/// A second block whose `b_meta`/`b_hashes` make it the fixture block's child. Its
/// pre-state is the fixture's again, which zero_bin would not check against the
/// checkpoint (a later block's pre-state is its predecessor's post-state).
fn child_of(first: &Value) -> Value {
    let mut child = first.clone();
    let b_data = &mut child["other_data"]["b_data"];
    b_data["b_meta"]["block_number"] = json!("0x12e3b69");
    let hashes = b_data["b_hashes"]["prev_hashes"].as_array_mut().unwrap();
    hashes.remove(0);
    hashes.push(first["other_data"]["b_data"]["b_hashes"]["cur_hash"].clone());
    b_data["b_hashes"]["cur_hash"] =
        json!("0x2222222222222222222222222222222222222222222222222222222222222222");
    child["other_data"]["checkpoint_state_trie_root"] =
        json!("0x3333333333333333333333333333333333333333333333333333333333333333");
    child
}

#[test]
fn later_blocks_must_follow_their_predecessor() {
    let first = fixture()[0].clone();
    let blocks = parse_input(&json!([first.clone(), child_of(&first)])).unwrap();
    assert_eq!(blocks.iter().map(|b| b.number).collect::<Vec<_>>(), vec![19_807_080, 19_807_081]);

    let message = error_of(&json!([first.clone(), first.clone()]));
    assert!(
        message.starts_with(
            "[1].other_data.b_data.b_meta.block_number: block 19807080 does not follow block 19807080"
        ),
        "{message}"
    );

    let mut child = child_of(&first);
    child["other_data"]["b_data"]["b_hashes"]["prev_hashes"][255] =
        json!("0x4444444444444444444444444444444444444444444444444444444444444444");
    let message = error_of(&json!([first.clone(), child]));
    assert!(
        message.starts_with("[1].other_data.b_data.b_hashes.prev_hashes[255]: parent hash 0x4444"),
        "{message}"
    );

    // The first block is still checked against its checkpoint.
    let message = error_of(&json!([child_of(&first), first]));
    assert!(message.starts_with("block 19807081: the compact pre-state's trie root"), "{message}");
}
