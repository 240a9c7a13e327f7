//! Artifact stores: where proofs and segment payloads live between tasks.
//!
//! Every read is checked against the BLAKE3 digest in its [`ArtifactRef`]; a mismatch
//! is [`StoreError::Corrupt`], never silently used. Keys are `job/task` paths.

mod fs;
mod mem;

use std::sync::Arc;

pub use fs::FsStore;
pub use mem::MemStore;

use crate::task::ArtifactRef;

/// The default store of the CLI: artifacts on the local disk.
pub const DEFAULT_STORE: &str = "fs:./.proofline/artifacts";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("artifact {uri} not found")]
    NotFound { uri: String },
    #[error("artifact {uri} is corrupted: {reason}")]
    Corrupt { uri: String, reason: String },
    #[error("artifact {uri} belongs to another store (this one is {store})")]
    ForeignUri { uri: String, store: String },
    #[error("invalid store spec {spec:?}: {reason}")]
    InvalidSpec { spec: String, reason: String },
    #[error("store I/O on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// A place to put and get immutable, content-checked artifacts.
///
/// ```
/// use proofline_runtime::store::{ArtifactStore, MemStore};
/// let store = MemStore::default();
/// let r = store.put("job-1/seg-0", b"proof").unwrap();
/// assert_eq!(store.get(&r).unwrap(), b"proof");
/// ```
pub trait ArtifactStore: Send + Sync + 'static {
    /// Human-readable description (`fs:/data/artifacts`), never containing secrets.
    fn describe(&self) -> String;
    /// Write `bytes` under `key` (overwriting: a re-run task writes the same bytes).
    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError>;
    /// Read and verify an artifact.
    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError>;
    /// Remove every artifact whose key starts with `prefix/`.
    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError>;
}

/// Open a store from its spec: `mem:`, `fs:DIR`.
pub fn open_store(spec: &str) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    if spec == "mem:" || spec == "mem" {
        return Ok(Arc::new(MemStore::default()));
    }
    if let Some(dir) = spec.strip_prefix("fs:") {
        if dir.is_empty() {
            return Err(StoreError::InvalidSpec {
                spec: spec.into(),
                reason: "fs: needs a directory, e.g. fs:./artifacts".into(),
            });
        }
        return Ok(Arc::new(FsStore::open(dir)?));
    }
    Err(StoreError::InvalidSpec {
        spec: spec.into(),
        reason: "expected mem: or fs:DIR".into(),
    })
}

/// Build the reference of `bytes` stored under `uri`.
pub(crate) fn reference(uri: String, bytes: &[u8]) -> ArtifactRef {
    ArtifactRef {
        uri,
        blake3: *blake3::hash(bytes).as_bytes(),
        len: bytes.len() as u64,
    }
}

/// Check bytes read back against their reference.
pub(crate) fn check(artifact: &ArtifactRef, bytes: Vec<u8>) -> Result<Vec<u8>, StoreError> {
    if bytes.len() as u64 != artifact.len {
        return Err(StoreError::Corrupt {
            uri: artifact.uri.clone(),
            reason: format!("expected {} bytes, read {}", artifact.len, bytes.len()),
        });
    }
    let digest = blake3::hash(&bytes);
    if digest.as_bytes() != &artifact.blake3 {
        return Err(StoreError::Corrupt {
            uri: artifact.uri.clone(),
            reason: format!(
                "BLAKE3 mismatch: expected {}, read {}",
                hex::encode(artifact.blake3),
                digest.to_hex()
            ),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(store: &dyn ArtifactStore) {
        let r = store.put("job-a/seg-0", b"hello").unwrap();
        assert_eq!(r.len, 5);
        assert_eq!(store.get(&r).unwrap(), b"hello");
        // A reference whose digest does not match the bytes is refused.
        let mut wrong = r.clone();
        wrong.blake3[0] ^= 1;
        assert!(matches!(store.get(&wrong), Err(StoreError::Corrupt { .. })));
        let other = store.put("job-b/seg-0", b"kept").unwrap();
        store.delete_prefix("job-a").unwrap();
        assert!(matches!(store.get(&r), Err(StoreError::NotFound { .. })));
        assert_eq!(store.get(&other).unwrap(), b"kept");
    }

    #[test]
    fn mem_store_contract() {
        exercise(&MemStore::default());
    }

    #[test]
    fn fs_store_contract_and_corruption_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_str().unwrap()).unwrap();
        exercise(&store);
        let r = store.put("job-c/agg-0-1", b"payload").unwrap();
        std::fs::write(dir.path().join("job-c/agg-0-1"), b"paylaod").unwrap();
        let err = store.get(&r).unwrap_err().to_string();
        assert!(
            err.contains("job-c/agg-0-1") && err.contains("BLAKE3 mismatch"),
            "{err}"
        );
    }

    #[test]
    fn specs() {
        assert!(open_store("mem:").is_ok());
        assert!(open_store("fs:").is_err());
        assert!(
            open_store("ftp://x")
                .err()
                .unwrap()
                .to_string()
                .contains("expected mem: or fs:DIR")
        );
    }
}
