//! Size limits on a witness, checked before its memory grows with the item count.
//!
//! Memory while reading and planning grows with the number of *items* (every item is
//! at least one 136-byte sponge block, plus a JSON value, a byte vector and a
//! statement entry), not with the input's bytes: `"",` is 3 bytes of input but about
//! 250 bytes in memory. So the limits count, not measure:
//!
//! 1. Before parsing, [`check_json_values`] counts the JSON values (structural commas
//!    outside strings) without allocating: at most [`MAX_JSON_VALUES`].
//! 2. Before any hex is decoded, [`check_items`] counts the items the witness lists
//!    name: at most [`MAX_ITEMS`].
//!
//! A real mainnet block has tens of thousands of items; the limits leave 20x headroom
//! and bound the worst case to a few hundred MB, whatever the input's size.

use super::WitnessError;

/// Most items (block header, witness headers, state nodes, codes, keys) in a witness.
pub const MAX_ITEMS: usize = 1 << 20;

/// Most JSON values (array elements and object fields) in an input.
pub const MAX_JSON_VALUES: usize = 2 * MAX_ITEMS;

/// Reject `input` if it holds more than [`MAX_JSON_VALUES`] JSON values. Counts the
/// commas outside strings (one fewer than the values of each non-empty container), so
/// it never under-counts a valid document; malformed JSON is left to the parser.
pub(crate) fn check_json_values(input: &[u8]) -> Result<(), WitnessError> {
    let mut commas = 0usize;
    let (mut in_string, mut escaped) = (false, false);
    for &b in input {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if b == b',' {
            commas += 1;
            if commas >= MAX_JSON_VALUES {
                return Err(WitnessError::TooLarge {
                    what: "JSON values",
                    count: format!("more than {MAX_JSON_VALUES}"),
                    max: MAX_JSON_VALUES,
                });
            }
        }
    }
    Ok(())
}

/// Reject a witness whose lists name more than [`MAX_ITEMS`] items in all (`lens`:
/// the lengths of its item lists; the block header is one more item).
pub(crate) fn check_items(lens: &[usize]) -> Result<(), WitnessError> {
    let total = lens.iter().fold(1usize, |sum, n| sum.saturating_add(*n));
    if total > MAX_ITEMS {
        return Err(WitnessError::TooLarge { what: "items", count: total.to_string(), max: MAX_ITEMS });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<u8> {
        let mut doc = b"{\"keys\": [".to_vec();
        for i in 0..n {
            doc.extend_from_slice(if i == 0 { b"\"\"" } else { b",\"\"" });
        }
        doc.extend_from_slice(b"]}");
        doc
    }

    #[test]
    fn counts_json_values_outside_strings() {
        assert!(check_json_values(&keys(MAX_JSON_VALUES - 1)).is_ok());
        let err = check_json_values(&keys(MAX_JSON_VALUES + 1)).unwrap_err();
        assert!(err.to_string().contains("JSON values"), "{err}");
        // Commas inside strings (escaped quotes included) are not values.
        let mut quoted = b"[\"".to_vec();
        quoted.extend(std::iter::repeat_n(b',', MAX_JSON_VALUES + 1));
        quoted.extend_from_slice(b"\\\",\"]");
        assert!(check_json_values(&quoted).is_ok());
    }

    #[test]
    fn counts_items_with_the_header() {
        assert!(check_items(&[MAX_ITEMS - 1]).is_ok());
        assert!(check_items(&[MAX_ITEMS - 1, 1]).is_err());
        assert!(check_items(&[usize::MAX, usize::MAX]).is_err());
    }
}
