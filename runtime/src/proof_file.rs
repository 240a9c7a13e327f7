//! The proof file: a self-describing container around a plugin's final proof.
//!
//! Layout: `PROOFLN1` magic, u16 length + plugin id (`name@version`), u64 length +
//! body, then the BLAKE3 digest of everything before it. The checksum catches
//! accidental damage; the plugin's verifier catches everything else.

/// A decoded proof file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofFile {
    /// `name@version` of the plugin that made (and can verify) the proof.
    pub plugin: String,
    pub body: Vec<u8>,
}

const MAGIC: &[u8; 8] = b"PROOFLN1";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofFileError {
    /// The file is not a proof file, or is cut short: bad input.
    #[error("not a Proofline proof file: {0}")]
    Malformed(String),
    /// The file is complete but its bytes changed after it was written.
    #[error(
        "proof file was modified after it was written: checksum mismatch (expected {expected}, found {found})"
    )]
    Checksum { expected: String, found: String },
}

impl ProofFile {
    /// ```
    /// use proofline_runtime::proof_file::ProofFile;
    /// let file = ProofFile { plugin: "keccak@0.1.0".into(), body: vec![1, 2, 3] };
    /// assert_eq!(ProofFile::decode(&file.encode()).unwrap(), file);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.plugin.len() as u16).to_le_bytes());
        out.extend_from_slice(self.plugin.as_bytes());
        out.extend_from_slice(&(self.body.len() as u64).to_le_bytes());
        out.extend_from_slice(&self.body);
        let digest = blake3::hash(&out);
        out.extend_from_slice(digest.as_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ProofFileError> {
        let malformed = |what: String| ProofFileError::Malformed(what);
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(malformed("missing the PROOFLN1 header at byte 0".into()));
        }
        let mut cur = Cursor { bytes, at: MAGIC.len() };
        let plugin_len =
            u16::from_le_bytes(cur.take(2, "the plugin id length")?.try_into().expect("2 bytes"));
        let plugin = std::str::from_utf8(cur.take(plugin_len as usize, "the plugin id")?)
            .map_err(|_| malformed("plugin id is not UTF-8".into()))?
            .to_owned();
        let body_len = u64::from_le_bytes(cur.take(8, "the body length")?.try_into().expect("8 bytes"));
        let body_len = usize::try_from(body_len).map_err(|_| malformed("body length overflows".into()))?;
        let body = cur.take(body_len, "the proof body")?.to_vec();
        let checked = cur.at;
        let digest = cur.take(32, "the checksum")?;
        if cur.at != bytes.len() {
            let extra = bytes.len() - cur.at;
            return Err(malformed(format!(
                "{extra} unexpected bytes after the checksum at offset {}",
                cur.at
            )));
        }
        let found = blake3::hash(&bytes[..checked]);
        if found.as_bytes() != digest {
            return Err(ProofFileError::Checksum {
                expected: hex::encode(digest),
                found: found.to_hex().to_string(),
            });
        }
        Ok(Self { plugin, body })
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ProofFileError> {
        let end = self.at.checked_add(n).filter(|&end| end <= self.bytes.len()).ok_or_else(|| {
            ProofFileError::Malformed(format!(
                "truncated: {what} needs {n} bytes at offset {}, the file has {} bytes",
                self.at,
                self.bytes.len()
            ))
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let bytes = ProofFile { plugin: "sim@1".into(), body: (0..200u8).collect() }.encode();
        for cut in 0..bytes.len() {
            assert!(
                matches!(ProofFile::decode(&bytes[..cut]), Err(ProofFileError::Malformed(_))),
                "cut {cut}"
            );
        }
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x40;
            assert!(ProofFile::decode(&tampered).is_err(), "flip at {i}");
        }
    }
}
