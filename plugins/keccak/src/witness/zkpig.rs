//! The ZK-PIG prover input format (kkrt-labs zk-pig, as used by keth's `test_data`).
//!
//! `{version, blocks: [{header, transaction, uncles, withdrawals}], witness: {state,
//! ancestors, codes}, chainConfig, extra}`: the block header and the ancestors are JSON
//! headers with their hashes. We RLP-encode the ancestors into `headers`, oldest first,
//! and check each one hashes to the hash it claims.

use alloy_primitives::keccak256;
use serde_json::Value;

use super::json::{array, field, hex_list, index, opt_hex_list};
use super::{BlockWitness, WitnessError, WitnessFormat, header, only_block, parent_state_root};

pub(crate) fn parse(doc: &Value) -> Result<BlockWitness, WitnessError> {
    let block = only_block(doc)?;
    let (head, claimed) = header::header_from_json(field(block, "blocks[0]", "header")?, "blocks[0].header")?;
    let header_rlp = header::encode(&head);
    let witness = field(doc, "", "witness")?;
    let headers = ancestors(field(witness, "witness", "ancestors")?)?;
    Ok(BlockWitness {
        format: WitnessFormat::Zkpig,
        number: head.number,
        hash: claimed.unwrap_or_else(|| keccak256(&header_rlp)),
        header_rlp,
        parent_hash: head.parent_hash,
        parent_state_root: parent_state_root(&headers, "witness.ancestors")?,
        state: hex_list(field(witness, "witness", "state")?, "witness.state")?,
        codes: hex_list(field(witness, "witness", "codes")?, "witness.codes")?,
        // ZK-PIG inputs carry no `keys`; accept them if a producer adds them.
        keys: opt_hex_list(witness, "witness", "keys")?,
        headers,
        prev_hashes: Vec::new(),
    })
}

/// RLP of the ancestor headers, oldest first (sorted by number if given in another order).
fn ancestors(list: &Value) -> Result<Vec<Vec<u8>>, WitnessError> {
    let mut out = Vec::new();
    for (i, item) in array(list, "witness.ancestors")?.iter().enumerate() {
        let path = index("witness.ancestors", i);
        let (head, claimed) = header::header_from_json(item, &path)?;
        let rlp = header::encode(&head);
        if let Some(claimed) = claimed {
            let computed = keccak256(&rlp);
            if computed != claimed {
                return Err(WitnessError::HeaderHashMismatch { path, computed, claimed });
            }
        }
        out.push((head.number, rlp));
    }
    out.sort_by_key(|(number, _)| *number); // stable: a no-op when already oldest first
    Ok(out.into_iter().map(|(_, rlp)| rlp).collect())
}
