//! Path-carrying accessors over `serde_json` values: every value read knows its JSON
//! path (`[0].other_data.b_data.b_hashes.prev_hashes[3]`), so every error says where.
//! Hex follows zero_bin's serde conventions: `0x`-prefixed quantities (leading zeros
//! allowed, up to 256 bits) and fixed-length `0x`-prefixed byte strings.

use alloy_primitives::{Address, B256, U256};
use serde_json::Value;

use crate::error::ZeroBinError;

/// A JSON value and where it is.
#[derive(Debug, Clone)]
pub(crate) struct Field<'a> {
    pub value: &'a Value,
    pub path: String,
}

pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Field<'a> {
    pub(crate) fn new(value: &'a Value, path: String) -> Self {
        Self { value, path }
    }

    pub(crate) fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    pub(crate) fn invalid(&self, message: impl Into<String>) -> ZeroBinError {
        ZeroBinError::Invalid { path: self.path.clone(), message: message.into() }
    }

    fn wrong_type(&self, expected: &'static str) -> ZeroBinError {
        ZeroBinError::WrongType { path: self.path.clone(), expected, found: type_name(self.value) }
    }

    /// A field that may be absent or null.
    pub(crate) fn opt(&self, key: &str) -> Result<Option<Field<'a>>, ZeroBinError> {
        let object = self.value.as_object().ok_or_else(|| self.wrong_type("an object"))?;
        Ok(object.get(key).filter(|v| !v.is_null()).map(|v| Field::new(v, self.child_path(key))))
    }

    /// A field that must be present and not null.
    pub(crate) fn get(&self, key: &str) -> Result<Field<'a>, ZeroBinError> {
        self.opt(key)?.ok_or_else(|| ZeroBinError::Missing { path: self.child_path(key) })
    }

    pub(crate) fn array(&self) -> Result<Vec<Field<'a>>, ZeroBinError> {
        let items = self.value.as_array().ok_or_else(|| self.wrong_type("an array"))?;
        Ok(items.iter().enumerate().map(|(i, v)| Field::new(v, format!("{}[{i}]", self.path))).collect())
    }

    pub(crate) fn str(&self) -> Result<&'a str, ZeroBinError> {
        self.value.as_str().ok_or_else(|| self.wrong_type("a string"))
    }

    /// `0x`-prefixed hex bytes of any even length up to `limit` hex characters; the
    /// limit is checked before anything is allocated.
    pub(crate) fn hex_bytes(&self, limit: usize) -> Result<Vec<u8>, ZeroBinError> {
        let text = self.str()?;
        let digits = text.strip_prefix("0x").ok_or_else(|| self.invalid("expected 0x-prefixed hex"))?;
        if digits.len() > limit {
            return Err(ZeroBinError::TooLarge { path: self.path.clone(), len: digits.len(), limit });
        }
        hex::decode(digits).map_err(|e| self.invalid(format!("invalid hex: {e}")))
    }

    fn fixed<const N: usize>(&self) -> Result<[u8; N], ZeroBinError> {
        let text = self.str()?;
        let digits = text.strip_prefix("0x").ok_or_else(|| self.invalid("expected 0x-prefixed hex"))?;
        if digits.len() != 2 * N {
            let message =
                format!("expected {N} bytes ({} hex digits), found {} hex digits", 2 * N, digits.len());
            return Err(self.invalid(message));
        }
        let mut out = [0u8; N];
        hex::decode_to_slice(digits, &mut out).map_err(|e| self.invalid(format!("invalid hex: {e}")))?;
        Ok(out)
    }

    pub(crate) fn b256(&self) -> Result<B256, ZeroBinError> {
        self.fixed::<32>().map(B256::from)
    }

    pub(crate) fn address(&self) -> Result<Address, ZeroBinError> {
        self.fixed::<20>().map(Address::from)
    }

    /// A quantity: a `0x`-prefixed hex string (at most 64 digits) or a JSON integer.
    pub(crate) fn u256(&self) -> Result<U256, ZeroBinError> {
        if let Some(n) = self.value.as_u64() {
            return Ok(U256::from(n));
        }
        let text = match self.value {
            Value::String(s) => s.as_str(),
            _ => return Err(self.wrong_type("a 0x-prefixed hex quantity")),
        };
        parse_quantity(text).map_err(|message| self.invalid(message))
    }

    pub(crate) fn u64(&self) -> Result<u64, ZeroBinError> {
        let value = self.u256()?;
        u64::try_from(value).map_err(|_| self.invalid(format!("{value:#x} does not fit in 64 bits")))
    }
}

/// Parses a `0x`-prefixed hex quantity of at most 256 bits.
pub(crate) fn parse_quantity(text: &str) -> Result<U256, String> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("expected a 0x-prefixed hex quantity, found {text:?}"))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?} is not a hex quantity"));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 64 {
        return Err(format!("{text:?} does not fit in 256 bits"));
    }
    U256::from_str_radix(if significant.is_empty() { "0" } else { significant }, 16)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("0x0").unwrap(), U256::ZERO);
        assert_eq!(parse_quantity("0x00ff").unwrap(), U256::from(255));
        assert_eq!(parse_quantity(&format!("0x{}", "f".repeat(64))).unwrap(), U256::MAX);
        assert!(parse_quantity(&format!("0x1{}", "0".repeat(64))).is_err());
        assert!(parse_quantity("0x").is_err());
        assert!(parse_quantity("12").is_err());
        assert!(parse_quantity("0x-1").is_err());
    }

    #[test]
    fn errors_carry_paths() {
        let v = json!({"a": {"list": ["0x01", 7, "0xzz"], "h": "0x1234"}});
        let root = Field::new(&v, "[2]".to_owned());
        let list = root.get("a").unwrap().get("list").unwrap().array().unwrap();
        assert_eq!(list[1].u64().unwrap(), 7);
        assert_eq!(list[2].u64().unwrap_err().to_string(), "[2].a.list[2]: \"0xzz\" is not a hex quantity");
        let err = root.get("a").unwrap().get("h").unwrap().b256().unwrap_err().to_string();
        assert_eq!(err, "[2].a.h: expected 32 bytes (64 hex digits), found 4 hex digits");
        assert_eq!(root.get("b").unwrap_err().to_string(), "[2].b: missing");
        let err = list[0].get("x").unwrap_err().to_string();
        assert_eq!(err, "[2].a.list[0]: expected an object, found a string");
        let big = Field::new(&v["a"]["h"], "h".to_owned());
        assert!(matches!(big.hex_bytes(2), Err(ZeroBinError::TooLarge { len: 4, limit: 2, .. })));
    }
}
