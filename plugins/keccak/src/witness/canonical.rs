//! Proofline's canonical witness format: what our own tools write.
//!
//! ```json
//! { "block": { "number": 22615247, "hash": "0x..", "parentHash": "0x..",
//!              "stateRoot": "0x..", "headerRlp": "0x.." },
//!   "parentStateRoot": "0x..",
//!   "witness": { "state": ["0x.."], "codes": ["0x.."], "keys": [], "headers": ["0x.."] } }
//! ```
//!
//! A witness read from zero_bin has no ancestor headers but `witness.prevHashes` (the
//! 256 previous block hashes, oldest first); other witnesses omit it.
//!
//! `block.stateRoot` is informational (it is checked against `headerRlp` when present);
//! `witness.keys` may be absent. Any other top-level field (e.g. `_derived_from`) is ignored.

use serde::Serialize;
use serde_json::Value;

use super::json::{array, b256, field, hex_bytes, hex_list, index, opt_field, opt_hex_list, quantity_u64};
use super::{BlockWitness, WitnessError, WitnessFormat, header};

pub(crate) fn parse(doc: &Value) -> Result<BlockWitness, WitnessError> {
    let block = field(doc, "", "block")?;
    let header_rlp = hex_bytes(field(block, "block", "headerRlp")?, "block.headerRlp")?;
    if let Some(v) = opt_field(block, "block", "stateRoot")? {
        let claimed = b256(v, "block.stateRoot")?;
        let in_header = header::decode(&header_rlp, "block.headerRlp")?.state_root;
        if claimed != in_header {
            return Err(WitnessError::Inconsistent {
                path: "block.stateRoot".into(),
                found: claimed.to_string(),
                other_path: "the stateRoot in block.headerRlp".into(),
                expected: in_header.to_string(),
            });
        }
    }
    let witness = field(doc, "", "witness")?;
    Ok(BlockWitness {
        format: WitnessFormat::Canonical,
        number: quantity_u64(field(block, "block", "number")?, "block.number")?,
        hash: b256(field(block, "block", "hash")?, "block.hash")?,
        header_rlp,
        parent_hash: b256(field(block, "block", "parentHash")?, "block.parentHash")?,
        parent_state_root: b256(field(doc, "", "parentStateRoot")?, "parentStateRoot")?,
        state: hex_list(field(witness, "witness", "state")?, "witness.state")?,
        codes: hex_list(field(witness, "witness", "codes")?, "witness.codes")?,
        keys: opt_hex_list(witness, "witness", "keys")?,
        headers: hex_list(field(witness, "witness", "headers")?, "witness.headers")?,
        prev_hashes: match opt_field(witness, "witness", "prevHashes")? {
            Some(list) => array(list, "witness.prevHashes")?
                .iter()
                .enumerate()
                .map(|(i, h)| b256(h, &index("witness.prevHashes", i)))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        },
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CanonicalBlock {
    number: u64,
    hash: String,
    parent_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_root: Option<String>,
    header_rlp: String,
}

#[derive(Serialize)]
struct CanonicalWitness {
    state: Vec<String>,
    codes: Vec<String>,
    keys: Vec<String>,
    headers: Vec<String>,
    #[serde(rename = "prevHashes", skip_serializing_if = "Vec::is_empty")]
    prev_hashes: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Canonical {
    block: CanonicalBlock,
    parent_state_root: String,
    witness: CanonicalWitness,
}

fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

fn hex_all(items: &[Vec<u8>]) -> Vec<String> {
    items.iter().map(|b| hex0x(b)).collect()
}

pub(crate) fn to_json(w: &BlockWitness) -> String {
    let doc = Canonical {
        block: CanonicalBlock {
            number: w.number,
            hash: w.hash.to_string(),
            parent_hash: w.parent_hash.to_string(),
            // Only a header that decodes has a state root to show; `validate` rejects the rest.
            state_root: header::decode(&w.header_rlp, "block.headerRlp")
                .ok()
                .map(|h| h.state_root.to_string()),
            header_rlp: hex0x(&w.header_rlp),
        },
        parent_state_root: w.parent_state_root.to_string(),
        witness: CanonicalWitness {
            state: hex_all(&w.state),
            codes: hex_all(&w.codes),
            keys: hex_all(&w.keys),
            headers: hex_all(&w.headers),
            prev_hashes: w.prev_hashes.iter().map(|h| h.to_string()).collect(),
        },
    };
    let mut out = serde_json::to_string_pretty(&doc).expect("plain structs serialize to JSON");
    out.push('\n');
    out
}
