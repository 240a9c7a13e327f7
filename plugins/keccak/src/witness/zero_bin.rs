//! Polygon Zero `zero_bin` leader inputs, with the block header they lack.
//!
//! A zero_bin input (`[{block_trace, other_data}]`, see [`proofline_zero_bin`]) carries
//! the block's hash, its 256 previous block hashes and the pre-state as a compact
//! witness, but no full header. The leader's `--header FILE` wraps it in an envelope:
//!
//! ```json
//! {"zeroBin": [{"block_trace": {..}, "other_data": {..}}],
//!  "headers": <FILE: an eth_getBlockByNumber result, an array of them, or JSON-RPC responses>,
//!  "batchIndex": 0}
//! ```
//!
//! `batchIndex` (absent: 0) is the block's place in the zero_bin batch it was cut from
//! (`batch` makes one job per block): only the first block's pre-state is held to
//! `checkpoint_state_trie_root`, as zero_bin itself does.
//!
//! The witness built here has no ancestor headers; instead its `prev_hashes` (whose
//! last one must be the header's parentHash) become one statement item, and the
//! decoded pre-state root (= the checkpoint root for a batch's first block) is the
//! parent state root the proof binds.

use alloy_consensus::Header;
use alloy_primitives::{B256, keccak256};
use proofline_zero_bin::{Checkpoint, ZeroBinBlock, parse_input_with};
use serde_json::Value;

use super::json::{field, index, opt_field, quantity_u64};
use super::{BlockWitness, WitnessError, WitnessFormat, header};

/// A header as given, or the `result` of a JSON-RPC response holding one.
fn rpc_result(value: &Value) -> &Value {
    value.get("result").unwrap_or(value)
}

/// One job input per block of a bare zero_bin input, each in the envelope with the
/// header(s) of its block from `headers` (the bytes of `--header FILE`): what
/// `proofline-leader --header` sends. Errors say which of the two is wrong.
pub fn zero_bin_jobs(input: &[u8], headers: &[u8]) -> Result<Vec<Vec<u8>>, HeaderError> {
    super::limits::check_json_values(input).map_err(HeaderError::Input)?;
    let doc: Value =
        serde_json::from_slice(input).map_err(|e| HeaderError::Input(WitnessError::from_json(&e)))?;
    if !proofline_zero_bin::is_zero_bin(&doc) {
        return Err(HeaderError::NotZeroBin);
    }
    let headers: Value =
        serde_json::from_slice(headers).map_err(|e| HeaderError::Header(WitnessError::from_json(&e)))?;
    let headers = match headers {
        Value::Array(items) => items,
        one => vec![one],
    };
    let number_of = |h: &Value| rpc_result(h).get("number").and_then(|n| quantity_u64(n, "number").ok());
    let blocks = match doc {
        Value::Array(items) => items,
        one => vec![one],
    };
    let jobs = blocks.into_iter().enumerate().map(|(i, block)| {
        let number =
            block.pointer("/other_data/b_data/b_meta/block_number").and_then(|n| quantity_u64(n, "").ok());
        let mine: Vec<&Value> =
            headers.iter().filter(|h| number.is_some() && number_of(h) == number).collect();
        // No match: send them all, so that the error lists the blocks the file has.
        let headers = if mine.is_empty() { headers.iter().collect() } else { mine };
        let envelope = serde_json::json!({"zeroBin": [block], "headers": headers, "batchIndex": i});
        serde_json::to_vec(&envelope).expect("JSON values serialize")
    });
    Ok(jobs.collect())
}

/// Why [`zero_bin_jobs`] cannot make job inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The input is not JSON, or is over the limits.
    #[error("the input: {0}")]
    Input(#[source] WitnessError),
    /// The header file is not JSON.
    #[error("the header file: {0}")]
    Header(#[source] WitnessError),
    /// `--header` goes with zero_bin witnesses only: the other formats carry their header.
    #[error(
        "--header is for zero_bin witnesses ([{{block_trace, other_data}}]), which lack a full header; \
         this input is not one (the other formats carry their header)"
    )]
    NotZeroBin,
}

pub(crate) fn parse(doc: &Value) -> Result<BlockWitness, WitnessError> {
    let batch_index = match opt_field(doc, "", "batchIndex")? {
        Some(v) => quantity_u64(v, "batchIndex")?,
        None => 0,
    };
    let checkpoint = if batch_index == 0 { Checkpoint::Check } else { Checkpoint::Skip };
    let blocks = parse_input_with(field(doc, "", "zeroBin")?, checkpoint)
        .map_err(|source| WitnessError::ZeroBin { path: "zeroBin".into(), source: Box::new(source) })?;
    let block = match <[ZeroBinBlock; 1]>::try_from(blocks) {
        Ok([block]) => block,
        Err(blocks) => {
            return Err(WitnessError::invalid(
                "zeroBin",
                format!(
                    "{} blocks (a zero_bin batch): a job proves one block; `proofline-leader batch` \
                     makes one job per block",
                    blocks.len()
                ),
            ));
        }
    };
    let (path, head) = header_for(field(doc, "", "headers")?, block.number)?;
    let header_rlp = header::encode(&head);
    check_header(&block, &head, &header_rlp, &path)?;
    Ok(BlockWitness {
        format: WitnessFormat::ZeroBin,
        number: block.number,
        hash: block.cur_hash,
        header_rlp,
        parent_hash: head.parent_hash,
        parent_state_root: block.pre_state.root,
        state: block.pre_state.nodes,
        codes: block.pre_state.codes,
        keys: Vec::new(),
        headers: Vec::new(),
        prev_hashes: block.prev_hashes,
    })
}

/// The header for block `number` among `headers` (one header, an array of them, each
/// possibly a JSON-RPC response `{"result": header}`), with its JSON path.
fn header_for(headers: &Value, number: u64) -> Result<(String, Header), WitnessError> {
    let listed: Vec<(String, &Value)> = match headers {
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (index("headers", i), v)).collect(),
        one => vec![("headers".to_string(), one)],
    };
    let mut seen = Vec::new();
    for (path, value) in listed {
        let (path, value) = match value.get("result") {
            Some(result) => (format!("{path}.result"), result),
            None => (path, value),
        };
        let (head, claimed) = header::header_from_json(value, &path)?;
        if let Some(claimed) = claimed {
            let computed = keccak256(header::encode(&head));
            if computed != claimed {
                return Err(WitnessError::HeaderHashMismatch { path, computed, claimed });
            }
        }
        if head.number == number {
            return Ok((path, head));
        }
        seen.push(head.number);
    }
    Err(WitnessError::invalid(
        "headers",
        format!("no header for block {number} (the --header file has blocks {seen:?})"),
    ))
}

/// The header is the zero_bin block's: same hash, parent, and block metadata.
fn check_header(block: &ZeroBinBlock, head: &Header, rlp: &[u8], path: &str) -> Result<(), WitnessError> {
    let b_data = "zeroBin[0].other_data.b_data";
    let mismatch = |what: &str, found: String, zero_bin: &str, expected: String| WitnessError::Inconsistent {
        path: format!("{what} of {path}"),
        found,
        other_path: format!("{b_data}.{zero_bin}"),
        expected,
    };
    let hash = keccak256(rlp);
    if hash != block.cur_hash {
        return Err(mismatch("the hash", hash.to_string(), "b_hashes.cur_hash", block.cur_hash.to_string()));
    }
    let parent = block.prev_hashes.last().copied().unwrap_or(B256::ZERO);
    if head.parent_hash != parent {
        let (found, expected) = (head.parent_hash.to_string(), parent.to_string());
        return Err(mismatch("the parentHash", found, "b_hashes.prev_hashes[255]", expected));
    }
    let meta = &block.meta;
    let fields = [
        ("the timestamp", head.timestamp, meta.timestamp, "b_meta.block_timestamp"),
        ("the gasLimit", head.gas_limit, meta.gas_limit, "b_meta.block_gaslimit"),
        ("the gasUsed", head.gas_used, meta.gas_used, "b_meta.block_gas_used"),
    ];
    for (what, found, expected, zero_bin) in fields {
        if found != expected {
            return Err(mismatch(what, found.to_string(), zero_bin, expected.to_string()));
        }
    }
    if head.beneficiary != meta.beneficiary {
        let (found, expected) = (head.beneficiary.to_string(), meta.beneficiary.to_string());
        return Err(mismatch("the miner", found, "b_meta.block_beneficiary", expected));
    }
    Ok(())
}
