//! Path-aware reading of a parsed JSON document.
//!
//! Each helper takes the JSON path of the value it reads (`witness.state[3]`) so that
//! any error names the exact place in the input. Hex is accepted with or without `0x`.

use alloy_primitives::{B256, FixedBytes, U256};
use serde_json::{Map, Value};

use super::WitnessError;

type Result<T> = std::result::Result<T, WitnessError>;

/// The JSON type of a value, as a person would say it.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `parent.key` (or just `key` at the top level).
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_string() } else { format!("{parent}.{key}") }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

fn wrong_type(path: &str, expected: &'static str, v: &Value) -> WitnessError {
    WitnessError::WrongType {
        path: if path.is_empty() { "top level".to_string() } else { path.to_string() },
        expected,
        got: type_name(v),
    }
}

pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>> {
    v.as_object().ok_or_else(|| wrong_type(path, "an object", v))
}

/// A required field of the object at `parent`.
pub(crate) fn field<'a>(v: &'a Value, parent: &str, key: &str) -> Result<&'a Value> {
    object(v, parent)?.get(key).ok_or_else(|| WitnessError::missing(join(parent, key)))
}

/// An optional field of the object at `parent`; `null` counts as absent.
pub(crate) fn opt_field<'a>(v: &'a Value, parent: &str, key: &str) -> Result<Option<&'a Value>> {
    Ok(object(v, parent)?.get(key).filter(|f| !f.is_null()))
}

pub(crate) fn array<'a>(v: &'a Value, path: &str) -> Result<&'a [Value]> {
    v.as_array().map(Vec::as_slice).ok_or_else(|| wrong_type(path, "an array", v))
}

fn string<'a>(v: &'a Value, path: &str, expected: &'static str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| wrong_type(path, expected, v))
}

/// Hex bytes, with or without a `0x` prefix.
pub(crate) fn hex_bytes(v: &Value, path: &str) -> Result<Vec<u8>> {
    let s = string(v, path, "a hex string")?;
    let (digits, prefix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(rest) => (rest, 2),
        None => (s, 0),
    };
    hex::decode(digits).map_err(|e| WitnessError::NotHex {
        path: path.to_string(),
        reason: match e {
            hex::FromHexError::OddLength => "odd length".to_string(),
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                format!("invalid character {c:?} at offset {}", index + prefix)
            }
            other => other.to_string(),
        },
    })
}

/// A list of hex byte strings.
pub(crate) fn hex_list(v: &Value, path: &str) -> Result<Vec<Vec<u8>>> {
    array(v, path)?.iter().enumerate().map(|(i, item)| hex_bytes(item, &index(path, i))).collect()
}

/// Exactly `N` hex bytes (a hash, an address, a bloom filter, a nonce).
pub(crate) fn fixed<const N: usize>(v: &Value, path: &str) -> Result<FixedBytes<N>> {
    let bytes = hex_bytes(v, path)?;
    FixedBytes::try_from(bytes.as_slice()).map_err(|_| WitnessError::WrongLength {
        path: path.to_string(),
        expected: N,
        got: bytes.len(),
    })
}

pub(crate) fn b256(v: &Value, path: &str) -> Result<B256> {
    fixed::<32>(v, path)
}

const QUANTITY: &str = "a quantity (a number, a 0x-prefixed hex string or a decimal string)";

/// A quantity as a JSON number, a `0x` hex string (JSON-RPC style) or a decimal string.
pub(crate) fn quantity_u256(v: &Value, path: &str) -> Result<U256> {
    let bad = |reason: String| WitnessError::invalid(path, reason);
    match v {
        Value::Number(n) => {
            n.as_u64().map(U256::from).ok_or_else(|| bad(format!("not a non-negative integer: {n}")))
        }
        Value::String(s) => {
            let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                Some(rest) => (rest, 16),
                None => (s.as_str(), 10),
            };
            let well_formed = !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
            if !well_formed {
                let kind = if radix == 16 { "hex" } else { "decimal" };
                return Err(bad(format!("not a {kind} quantity: {s:?}")));
            }
            U256::from_str_radix(digits, radix as u64)
                .map_err(|_| bad(format!("quantity {s:?} does not fit in 256 bits")))
        }
        other => Err(wrong_type(path, QUANTITY, other)),
    }
}

pub(crate) fn quantity_u64(v: &Value, path: &str) -> Result<u64> {
    let n = quantity_u256(v, path)?;
    u64::try_from(n).map_err(|_| WitnessError::invalid(path, format!("{n} does not fit in 64 bits")))
}

/// An optional list of hex byte strings at `parent.key`; absent or `null` is empty.
pub(crate) fn opt_hex_list(v: &Value, parent: &str, key: &str) -> Result<Vec<Vec<u8>>> {
    match opt_field(v, parent, key)? {
        Some(list) => hex_list(list, &join(parent, key)),
        None => Ok(Vec::new()),
    }
}
