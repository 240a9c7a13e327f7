//! A byte cursor over the compact stream with the small CBOR (RFC 8949) subset the
//! witness uses: unsigned integers (major type 0) and definite-length byte strings
//! (major type 2). Everything else (negative integers, text, arrays, maps, tags, floats,
//! indefinite lengths) is rejected. Lengths are checked against the bytes left before
//! anything is sliced, so a bogus length cannot make anyone allocate.

use crate::error::CompactErrorKind;

/// Reads the stream front to back; `pos` is the offset of the next unread byte.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A failure at a byte offset (the caller adds which instruction it was in).
pub(crate) type ReadError = (usize, CompactErrorKind);

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// Takes `n` raw bytes, or says how many were missing.
    pub(crate) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], ReadError> {
        let available = self.remaining();
        match usize::try_from(n) {
            Ok(n) if n <= available => {
                let out = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(out)
            }
            _ => Err((self.pos, CompactErrorKind::Truncated { what, needed: n, available })),
        }
    }

    pub(crate) fn byte(&mut self, what: &'static str) -> Result<u8, ReadError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn array32(&mut self, what: &'static str) -> Result<[u8; 32], ReadError> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32, what)?);
        Ok(out)
    }

    /// Reads a CBOR head: (major type, argument).
    fn head(&mut self, what: &'static str) -> Result<(u8, u64), ReadError> {
        let start = self.pos;
        let initial = self.byte(what)?;
        let (major, info) = (initial >> 5, initial & 0x1f);
        let width = match info {
            0..=23 => return Ok((major, u64::from(info))),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            31 => return Err(cbor_error(start, what, "indefinite-length items are not supported")),
            _ => return Err(cbor_error(start, what, "reserved additional-information value")),
        };
        let arg = self.take(width, what)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Ok((major, arg))
    }

    /// Reads a CBOR unsigned integer.
    pub(crate) fn uint(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let start = self.pos;
        match self.head(what)? {
            (MAJOR_UINT, value) => Ok(value),
            (major, _) => Err(cbor_error(start, what, &expected("an unsigned integer", major))),
        }
    }

    /// Reads a CBOR byte string, borrowed from the stream.
    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], ReadError> {
        let start = self.pos;
        match self.head(what)? {
            (MAJOR_BYTES, len) => self.take(len, what),
            (major, _) => Err(cbor_error(start, what, &expected("a byte string", major))),
        }
    }
}

fn expected(wanted: &str, major: u8) -> String {
    let found = match major {
        0 => "an unsigned integer",
        1 => "a negative integer",
        2 => "a byte string",
        3 => "a text string",
        4 => "an array",
        5 => "a map",
        6 => "a tag",
        _ => "a simple value or float",
    };
    format!("expected CBOR {wanted}, found {found} (major type {major})")
}

fn cbor_error(offset: usize, what: &'static str, message: &str) -> ReadError {
    (offset, CompactErrorKind::Cbor { what, message: message.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_integers_of_every_width() {
        let cases: [(&[u8], u64); 6] = [
            (&[0x00], 0),
            (&[0x17], 23),
            (&[0x18, 0x18], 24),
            (&[0x19, 0x01, 0x00], 256),
            (&[0x1a, 0x00, 0x01, 0x00, 0x00], 65536),
            (&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], u64::MAX),
        ];
        for (input, want) in cases {
            let mut c = Cursor::new(input);
            assert_eq!(c.uint("n").unwrap(), want, "{input:02x?}");
            assert!(c.is_empty());
        }
    }

    #[test]
    fn byte_strings_borrow_and_check_length() {
        let mut c = Cursor::new(&[0x43, 1, 2, 3, 0x40]);
        assert_eq!(c.bytes("b").unwrap(), &[1, 2, 3]);
        assert_eq!(c.bytes("b").unwrap(), &[] as &[u8]);
        // Claims 2^32 bytes with 1 left: an error at the length, nothing allocated.
        let mut c = Cursor::new(&[0x5a, 0xff, 0xff, 0xff, 0xff, 0x00]);
        let (offset, kind) = c.bytes("code").unwrap_err();
        assert_eq!(offset, 5);
        assert!(matches!(kind, CompactErrorKind::Truncated { needed: 0xffff_ffff, available: 1, .. }));
        let mut c = Cursor::new(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(c.bytes("code").unwrap_err().1, CompactErrorKind::Truncated { .. }));
    }

    #[test]
    fn rejects_other_types_and_indefinite_lengths() {
        for input in [&[0x20u8][..], &[0x61, b'a'], &[0x80], &[0xa0], &[0x5f], &[0x1c], &[0xf4]] {
            let err = Cursor::new(input).bytes("x").unwrap_err();
            assert_eq!(err.0, 0);
            assert!(matches!(err.1, CompactErrorKind::Cbor { .. }), "{input:02x?}: {:?}", err.1);
        }
        assert!(Cursor::new(&[0x41]).uint("n").is_err());
        assert!(matches!(
            Cursor::new(&[0x19, 0x01]).uint("n").unwrap_err().1,
            CompactErrorKind::Truncated { .. }
        ));
    }
}
