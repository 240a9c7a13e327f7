//! One versioned encoding for a plugin's payloads, artifacts and proofs.
//!
//! `[version byte][postcard body]`, nothing after it. Postcard is compact and
//! deterministic, so a re-run of a task produces identical bytes (the runtime's
//! duplicate detection and resume rely on that). The version byte lets a plugin refuse
//! bytes from an incompatible build with a clear message instead of a decode error.
//!
//! ```
//! use proofline_plugin::codec::{Codec, CodecError};
//! const CODEC: Codec = Codec::new(3);
//! let bytes = CODEC.encode(&(7u32, "seven"));
//! assert_eq!(bytes[0], 3);
//! assert_eq!(CODEC.decode::<(u32, String)>(&bytes, "pair").unwrap(), (7, "seven".into()));
//! let older = Codec::new(2).decode::<(u32, String)>(&bytes, "pair");
//! assert!(matches!(older, Err(CodecError::Version { found: 3, expected: 2, .. })));
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

/// An encoding at one format version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codec {
    version: u8,
}

/// Why bytes did not decode; `what` names the thing being decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("{what}: empty (0 bytes)")]
    Empty { what: String },
    #[error("{what}: unknown format version {found} (this build reads version {expected})")]
    Version { what: String, found: u8, expected: u8 },
    #[error("{what}: undecodable ({len} bytes)")]
    Undecodable {
        what: String,
        len: usize,
        #[source]
        source: postcard::Error,
    },
    #[error("{what}: {trailing} trailing bytes after byte {at}")]
    Trailing { what: String, trailing: usize, at: usize },
}

impl Codec {
    pub const fn new(version: u8) -> Self {
        Self { version }
    }

    pub const fn version(self) -> u8 {
        self.version
    }

    /// Encode `value` behind the version byte.
    pub fn encode<T: Serialize>(self, value: &T) -> Vec<u8> {
        let mut out = vec![self.version];
        // Postcard fails only on a writer error or a type serde cannot express
        // (sequences of unknown length); neither happens with a Vec and derived types.
        out.extend(postcard::to_allocvec(value).expect("postcard serializes derived types into memory"));
        out
    }

    /// Decode bytes made by [`Codec::encode`] at this version, all of them.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8], what: &str) -> Result<T, CodecError> {
        let Some((&found, body)) = bytes.split_first() else {
            return Err(CodecError::Empty { what: what.into() });
        };
        if found != self.version {
            return Err(CodecError::Version { what: what.into(), found, expected: self.version });
        }
        let (value, rest) = postcard::take_from_bytes(body).map_err(|source| CodecError::Undecodable {
            what: what.into(),
            len: bytes.len(),
            source,
        })?;
        if !rest.is_empty() {
            let at = bytes.len() - rest.len();
            return Err(CodecError::Trailing { what: what.into(), trailing: rest.len(), at });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODEC: Codec = Codec::new(1);

    #[test]
    fn round_trips_and_names_what_is_wrong() {
        let bytes = CODEC.encode(&vec![1u64, 2, 3]);
        assert_eq!(CODEC.decode::<Vec<u64>>(&bytes, "list").unwrap(), vec![1, 2, 3]);

        let empty = CODEC.decode::<Vec<u64>>(&[], "list").unwrap_err();
        assert_eq!(empty.to_string(), "list: empty (0 bytes)");

        let mut long = bytes.clone();
        long.push(0);
        let trailing = CODEC.decode::<Vec<u64>>(&long, "list").unwrap_err();
        assert_eq!(trailing.to_string(), format!("list: 1 trailing bytes after byte {}", bytes.len()));

        let cut = CODEC.decode::<Vec<u64>>(&bytes[..2], "list").unwrap_err();
        assert!(matches!(cut, CodecError::Undecodable { len: 2, .. }), "{cut}");
        assert!(std::error::Error::source(&cut).is_some(), "the postcard error is kept as the source");
    }
}
