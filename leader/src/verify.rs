//! `verify` mode: exit 0 only if a proof file verifies.
//!
//! The file is read through [`read_limited`] so that a huge (or endless, `/dev/zero`)
//! file is rejected as bad input after `--max-proof-mib`, not read until memory runs out.

use std::io::Read;
use std::path::Path;

use proofline_runtime::plugin::{PluginError, Verdict};
use proofline_runtime::proof_file::{ProofFile, ProofFileError};

use crate::Failure;

pub fn verify(common: &crate::cli::Common, file: &Path, max_proof_mib: u64) -> Result<(), Failure> {
    let limit = crate::cli::mib_to_bytes(max_proof_mib).unwrap_or(u64::MAX);
    let cannot_read = |e: std::io::Error| Failure::bad_input(format!("cannot read {}: {e}", file.display()));
    let read = if file == Path::new("-") {
        read_limited(std::io::stdin().lock(), limit)
    } else {
        std::fs::File::open(file).and_then(|f| {
            // A regular file's length is known: no need to read it to reject it.
            if f.metadata()?.len() > limit { Ok(Limited::Over) } else { read_limited(f, limit) }
        })
    };
    let bytes = match read.map_err(cannot_read)? {
        Limited::Within(bytes) => bytes,
        Limited::Over => {
            return Err(Failure::bad_input(format!(
                "{}: larger than {max_proof_mib} MiB, the most a proof file may be \
                 (raise it with --max-proof-mib)",
                file.display()
            )));
        }
    };
    let proof = ProofFile::decode(&bytes).map_err(|e| match e {
        ProofFileError::Malformed(_) => Failure::bad_input(format!("{}: {e}", file.display())),
        ProofFileError::Checksum { .. } => {
            Failure::other(format!("{}: does not verify: {e}", file.display()))
        }
    })?;
    let registry = crate::plugins(common)?;
    let name = proof.plugin.split('@').next().unwrap_or_default();
    let plugin = crate::plugin_named(&registry, name)?;
    if plugin.id().to_string() != proof.plugin {
        return Err(Failure::bad_input(format!(
            "{}: made by {}, this build verifies {}",
            file.display(),
            proof.plugin,
            plugin.id()
        )));
    }
    match plugin.verify(&proof.body) {
        Ok(Verdict::Valid { statement }) => {
            println!("proof verifies: {statement}");
            Ok(())
        }
        Ok(Verdict::Invalid { reason }) => {
            Err(Failure::other(format!("{}: does not verify: {reason}", file.display())))
        }
        Err(PluginError::BadInput(m)) => {
            Err(Failure::bad_input(format!("{}: malformed proof: {m}", file.display())))
        }
        Err(e) => Err(Failure::other(format!("{}: verification failed: {e}", file.display()))),
    }
}

/// What [`read_limited`] read.
#[derive(Debug, PartialEq, Eq)]
pub enum Limited {
    /// Everything, at most the limit.
    Within(Vec<u8>),
    /// More than the limit: the reader was abandoned after `limit + 1` bytes.
    Over,
}

/// Read `reader` to its end, but never more than `limit + 1` bytes, and never reserve
/// more than that either: memory grows with the input only up to the limit.
pub fn read_limited(reader: impl Read, limit: u64) -> std::io::Result<Limited> {
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let mut reader = reader.take(limit.saturating_add(1));
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if bytes.capacity() - bytes.len() < n {
            // Double as `Vec` would, but stop at the limit.
            let want = (bytes.len() + n).max(bytes.capacity() * 2).min(cap);
            bytes.reserve_exact(want - bytes.len());
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    Ok(if bytes.len() as u64 > limit { Limited::Over } else { Limited::Within(bytes) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_at_most_one_byte_past_the_limit() {
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), Limited::Within(b"abc".to_vec()));
        assert_eq!(read_limited(&b"abcd"[..], 3).unwrap(), Limited::Over);
        assert_eq!(read_limited(&b""[..], 0).unwrap(), Limited::Within(Vec::new()));
        // An endless reader ends at the limit.
        assert_eq!(read_limited(std::io::repeat(0), 1 << 10).unwrap(), Limited::Over);
    }
}
