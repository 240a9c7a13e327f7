//! Block headers: from JSON (as ethrex and ZK-PIG give them) to alloy's `Header`, and
//! from RLP back to `Header`.
//!
//! The JSON field names are those of `eth_getBlockByNumber` (which alloy's serde also
//! uses); a few aliases seen in other tools are accepted. Fields are read one by one so
//! that an error names the exact field (`blocks[0].header.gasLimit`).

use alloy_consensus::Header;
use alloy_primitives::{Address, B256};
use serde_json::Value;

use super::WitnessError;
use super::json::{b256, field, fixed, hex_bytes, join, opt_field, quantity_u64, quantity_u256};

type Result<T> = std::result::Result<T, WitnessError>;

/// The first name is the standard one (used in "missing field" errors); the rest are aliases.
fn field_any<'a>(v: &'a Value, path: &str, names: &[&'static str]) -> Result<(&'a Value, String)> {
    for name in names {
        if let Some(f) = opt_field(v, path, name)? {
            return Ok((f, join(path, name)));
        }
    }
    // Report the standard name; `field` also reports a non-object parent.
    field(v, path, names[0]).map(|f| (f, join(path, names[0])))
}

fn opt<'a, T>(
    v: &'a Value,
    path: &str,
    name: &str,
    read: impl Fn(&'a Value, &str) -> Result<T>,
) -> Result<Option<T>> {
    opt_field(v, path, name)?.map(|f| read(f, &join(path, name))).transpose()
}

/// Read a JSON block header at `path`. Returns the header and the hash it claims, if the
/// JSON has a `hash` field.
pub(crate) fn header_from_json(v: &Value, path: &str) -> Result<(Header, Option<B256>)> {
    macro_rules! req {
        ($read:expr, $($name:literal),+) => {{
            let (f, p) = field_any(v, path, &[$($name),+])?;
            $read(f, &p)?
        }};
    }
    let header = Header {
        parent_hash: req!(b256, "parentHash"),
        ommers_hash: req!(b256, "sha3Uncles", "ommersHash"),
        beneficiary: Address::from(req!(fixed::<20>, "miner", "coinbase", "feeRecipient")),
        state_root: req!(b256, "stateRoot"),
        transactions_root: req!(b256, "transactionsRoot"),
        receipts_root: req!(b256, "receiptsRoot"),
        logs_bloom: req!(fixed::<256>, "logsBloom").into(),
        difficulty: req!(quantity_u256, "difficulty"),
        number: req!(quantity_u64, "number"),
        gas_limit: req!(quantity_u64, "gasLimit"),
        gas_used: req!(quantity_u64, "gasUsed"),
        timestamp: req!(quantity_u64, "timestamp"),
        extra_data: req!(hex_bytes, "extraData").into(),
        mix_hash: req!(b256, "mixHash", "prevRandao"),
        nonce: req!(fixed::<8>, "nonce"),
        base_fee_per_gas: opt(v, path, "baseFeePerGas", quantity_u64)?,
        withdrawals_root: opt(v, path, "withdrawalsRoot", b256)?,
        blob_gas_used: opt(v, path, "blobGasUsed", quantity_u64)?,
        excess_blob_gas: opt(v, path, "excessBlobGas", quantity_u64)?,
        parent_beacon_block_root: opt(v, path, "parentBeaconBlockRoot", b256)?,
        requests_hash: opt(v, path, "requestsHash", b256)?,
    };
    check_optional_order(&header, path)?;
    let claimed = opt(v, path, "hash", b256)?;
    Ok((header, claimed))
}

/// The optional (fork-added) header fields are appended to the RLP list in order, so a
/// present field after an absent one cannot be encoded.
fn check_optional_order(h: &Header, path: &str) -> Result<()> {
    let present = [
        ("baseFeePerGas", h.base_fee_per_gas.is_some()),
        ("withdrawalsRoot", h.withdrawals_root.is_some()),
        ("blobGasUsed", h.blob_gas_used.is_some()),
        ("excessBlobGas", h.excess_blob_gas.is_some()),
        ("parentBeaconBlockRoot", h.parent_beacon_block_root.is_some()),
        ("requestsHash", h.requests_hash.is_some()),
    ];
    let mut first_missing = None;
    for (name, is_present) in present {
        match (is_present, first_missing) {
            (false, None) => first_missing = Some(name),
            (true, Some(missing)) => {
                return Err(WitnessError::invalid(
                    join(path, missing),
                    format!("missing, but the later fork field {name} is present"),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// RLP-encode a header.
pub(crate) fn encode(header: &Header) -> Vec<u8> {
    alloy_rlp::encode(header)
}

/// Decode an RLP block header (the whole of `rlp`, nothing left over).
pub(crate) fn decode(rlp: &[u8], path: &str) -> Result<Header> {
    alloy_rlp::decode_exact::<Header>(rlp)
        .map_err(|e| WitnessError::invalid(path, format!("not an RLP block header ({e})")))
}
