//! The ethrex-replay cache format (lambdaclass/ethrex-replay `caches/*.json`).
//!
//! `{blocks: [{header, body}], witness: {state, codes, keys, headers}, network}`: the
//! header is JSON without a hash (we RLP-encode it and hash it), and `witness` is a raw
//! `debug_executionWitness` result whose `headers` are RLP hex, oldest first.

use alloy_primitives::keccak256;
use serde_json::Value;

use super::json::{field, hex_list, opt_hex_list};
use super::{BlockWitness, WitnessError, WitnessFormat, header, only_block, parent_state_root};

pub(crate) fn parse(doc: &Value) -> Result<BlockWitness, WitnessError> {
    let block = only_block(doc)?;
    let (head, claimed) = header::header_from_json(field(block, "blocks[0]", "header")?, "blocks[0].header")?;
    let header_rlp = header::encode(&head);
    let witness = field(doc, "", "witness")?;
    let headers = hex_list(field(witness, "witness", "headers")?, "witness.headers")?;
    Ok(BlockWitness {
        format: WitnessFormat::EthrexReplay,
        number: head.number,
        // ethrex caches carry no block hash: the hash is the header's own digest.
        hash: claimed.unwrap_or_else(|| keccak256(&header_rlp)),
        header_rlp,
        parent_hash: head.parent_hash,
        parent_state_root: parent_state_root(&headers, "witness.headers")?,
        state: hex_list(field(witness, "witness", "state")?, "witness.state")?,
        codes: hex_list(field(witness, "witness", "codes")?, "witness.codes")?,
        keys: opt_hex_list(witness, "witness", "keys")?,
        headers,
        prev_hashes: Vec::new(),
    })
}
