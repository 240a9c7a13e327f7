//! zero_bin witnesses (real mainnet block 19807080) with their `--header`: what the
//! witness holds, and every way the pair can fail to hold together.

use proofline_keccak::statement::Statement;
use proofline_keccak::witness::{
    HeaderError, WitnessError, WitnessFormat, parse_block_witness, zero_bin_jobs,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/../../../shared/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn witness() -> Vec<u8> {
    fixture("mainnet-19807080.polygon-zero-witness.json")
}

fn header() -> Vec<u8> {
    fixture("mainnet-19807080.header.json")
}

fn one_job(input: &[u8], header: &[u8]) -> Vec<u8> {
    let mut jobs = zero_bin_jobs(input, header).unwrap();
    assert_eq!(jobs.len(), 1);
    jobs.pop().unwrap()
}

fn error_of(input: &[u8], header: &[u8]) -> String {
    parse_block_witness(&one_job(input, header)).unwrap_err().to_string()
}

fn edit(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut doc: Value = serde_json::from_slice(bytes).unwrap();
    f(&mut doc);
    serde_json::to_vec(&doc).unwrap()
}

#[test]
fn the_fixture_with_its_header_is_a_block_anchored_by_its_previous_hashes() {
    let w = parse_block_witness(&one_job(&witness(), &header())).unwrap();
    assert_eq!(w.format, WitnessFormat::ZeroBin);
    assert_eq!(w.number, 19_807_080);
    assert_eq!(w.hash.to_string(), "0x0b4c5b498320e5858e7445a5af10658ffee39c9a39de22c81452de5421f63464");
    assert_eq!(
        w.parent_state_root.to_string(),
        "0xbbd66174555d27c88e285ff4797de401470d8d2486d15513ab36e491e864bca2"
    );
    assert_eq!((w.state.len(), w.codes.len(), w.headers.len(), w.prev_hashes.len()), (968, 15, 0, 256));
    assert_eq!(w.prev_hashes[255], w.parent_hash, "the last previous hash is the parent");

    let statement = Statement::from_witness(&w);
    statement.check_shape().unwrap();
    assert_eq!(statement.items.len(), 1 + 968 + 15 + 1);
    assert_eq!(statement.permutation_count(), 3002);
    assert!(
        statement.describe_items().ends_with("256 previous block hashes"),
        "{}",
        statement.describe_items()
    );

    // The canonical form keeps the previous hashes.
    let again = parse_block_witness(w.to_canonical_json().as_bytes()).unwrap();
    assert_eq!(again.prev_hashes, w.prev_hashes);
    assert_eq!(Statement::from_witness(&again), statement);
}

#[test]
fn a_bare_zero_bin_witness_says_it_needs_its_header() {
    assert_eq!(parse_block_witness(&witness()).unwrap_err(), WitnessError::NeedsHeader);
    let canonical =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/example-block.json")).unwrap();
    assert_eq!(zero_bin_jobs(&canonical, &header()).unwrap_err(), HeaderError::NotZeroBin);
    assert!(matches!(zero_bin_jobs(&witness(), b"{ nope"), Err(HeaderError::Header(_))));
}

#[test]
fn a_header_that_is_not_the_blocks_is_named() {
    // Another block number: no header for this block.
    let other = edit(&header(), |h| {
        h[0]["number"] = "0x12e3b69".into();
        h[0].as_object_mut().unwrap().remove("hash");
    });
    let err = zero_bin_jobs(&witness(), &other).unwrap();
    let err = parse_block_witness(&err[0]).unwrap_err().to_string();
    assert!(err.contains("no header for block 19807080") && err.contains("19807081"), "{err}");

    // A changed field with the original hash: the header does not hash to its hash.
    let tampered = edit(&header(), |h| h[0]["gasUsed"] = "0x1".into());
    assert!(error_of(&witness(), &tampered).contains("header does not hash to its claimed hash"));

    // ... and without a claimed hash: it is not the block zero_bin names.
    let unhashed = edit(&tampered, |h| {
        h[0].as_object_mut().unwrap().remove("hash");
    });
    let err = error_of(&witness(), &unhashed);
    assert!(err.contains("the hash of headers[0]") && err.contains("b_hashes.cur_hash"), "{err}");

    // A JSON-RPC response is read through its `result`.
    let rpc = edit(&header(), |h| *h = serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": h[0]}));
    assert_eq!(parse_block_witness(&one_job(&witness(), &rpc)).unwrap().number, 19_807_080);
}

#[test]
fn a_tampered_zero_bin_witness_is_named() {
    let root = edit(&witness(), |w| {
        w[0]["other_data"]["checkpoint_state_trie_root"] =
            "0x1111111111111111111111111111111111111111111111111111111111111111".into();
    });
    let err = error_of(&root, &header());
    assert!(err.contains("checkpoint_state_trie_root") && err.contains("Inconsistent pre-state"), "{err}");

    let cut = edit(&witness(), |w| {
        let compact = &mut w[0]["block_trace"]["trie_pre_images"]["combined"]["compact"];
        let text = compact.as_str().unwrap();
        let half = 2 + (((text.len() - 2) / 2) & !1); // "0x" and an even number of digits
        *compact = text[..half].into();
    });
    let err = error_of(&cut, &header());
    assert!(err.starts_with("zeroBin: ") && err.contains("compact stream byte"), "{err}");

    let parent = edit(&witness(), |w| {
        w[0]["other_data"]["b_data"]["b_hashes"]["prev_hashes"][255] =
            "0x2222222222222222222222222222222222222222222222222222222222222222".into();
    });
    let err = error_of(&parent, &header());
    assert!(err.contains("the parentHash of headers[0]") && err.contains("prev_hashes[255]"), "{err}");
}

#[test]
fn a_batch_becomes_one_job_per_block_and_only_the_first_meets_the_checkpoint() {
    // A second block that follows the first (number + 1, parent = the first's hash).
    let two = edit(&witness(), |w| {
        let mut next = w[0].clone();
        next["other_data"]["b_data"]["b_meta"]["block_number"] = "0x12e3b69".into();
        let hashes = &mut next["other_data"]["b_data"]["b_hashes"];
        hashes["prev_hashes"][255] = hashes["cur_hash"].clone();
        // A batch shares one checkpoint: the root before its first block, not this one's.
        next["other_data"]["checkpoint_state_trie_root"] =
            "0x3333333333333333333333333333333333333333333333333333333333333333".into();
        w.as_array_mut().unwrap().push(next);
    });
    let jobs = zero_bin_jobs(&two, &header()).unwrap();
    assert_eq!(jobs.len(), 2);
    let second: Value = serde_json::from_slice(&jobs[1]).unwrap();
    assert_eq!(second["batchIndex"], 1);
    // The second block is not held to the checkpoint (that would fail: the root differs);
    // its (copied) header does not match, the next check.
    let err = parse_block_witness(&jobs[1]).unwrap_err().to_string();
    assert!(err.contains("no header for block 19807081"), "{err}");
    // Both blocks in one job is refused, naming the batch.
    let both = edit(&jobs[0], |e| e["zeroBin"] = serde_json::from_slice(&two).unwrap());
    let err = parse_block_witness(&both).unwrap_err().to_string();
    assert!(err.contains("2 blocks (a zero_bin batch)"), "{err}");
}
