//! Artifact stores: where proofs and segment payloads live between tasks.
//!
//! Every read is checked against the BLAKE3 digest in its [`ArtifactRef`]; a mismatch
//! is [`StoreError::Corrupt`], never silently used. Keys are `job/task` paths.
//!
//! Specs understood by [`open_store`] / [`open_store_with`]:
//!
//! | spec                  | store        | notes                                          |
//! |-----------------------|--------------|------------------------------------------------|
//! | `mem:`                | [`MemStore`] | tests, embedded runs                           |
//! | `fs:DIR`              | [`FsStore`]  | the default, `fs:./.proofline/artifacts`       |
//! | `s3://bucket/prefix`  | [`S3Store`]  | AWS S3, MinIO, any S3 server ([`StoreOptions`]) |
//!
//! Stores opened here are wrapped in a [`MeteredStore`] (latency and bytes per
//! operation, in the Prometheus metrics). Remote stores can be wrapped in a bounded local [`CachedStore`]
//! ([`StoreOptions::cache_bytes`]). Nothing here ever sets an expiry (no lifecycle
//! rules, no TTLs): artifacts live until [`ArtifactStore::delete_prefix`] removes them.

mod cache;
mod fs;
pub mod inline;
mod mem;
mod metered;
mod s3;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub use cache::{CacheStats, CachedStore};
pub use fs::{FsStore, write_durably};
pub use mem::MemStore;
pub use metered::MeteredStore;
pub use s3::{S3Config, S3Credentials, S3Store, sdk as s3_sdk};

use crate::metrics::store::StoreKind;
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
    Io { path: String, source: std::io::Error },
    /// A remote store refused an operation or stayed unreachable past its retry budget.
    #[error("store {store}: {op} {key} failed: {reason}")]
    Remote {
        store: String,
        op: &'static str,
        key: String,
        reason: String,
        /// The server was unreachable or overloaded (retries ran out), rather than
        /// refusing the request: trying the task again later can succeed.
        transient: bool,
    },
    /// A remote store could not be opened (wrong bucket, credentials, endpoint).
    #[error("cannot open store {store}: {reason}")]
    Unavailable { store: String, reason: String },
    /// The store does not implement an optional operation.
    #[error("store {store} does not support {op}")]
    Unsupported { store: String, op: &'static str },
}

/// The artifacts of one job (the first segment of their keys), for garbage collection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobArtifacts {
    /// The job's key prefix (`job` of `job/task`).
    pub job: String,
    /// Modification time of the job's newest artifact.
    pub newest: SystemTime,
    /// Number of artifacts.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
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
    /// Write a small self-checking record (a job's manifest, a journal entry) that is
    /// read back with [`get_raw`](Self::get_raw): like [`put`](Self::put), without a
    /// reference (a store in memory then skips hashing it).
    fn put_raw(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.put(key, bytes).map(drop)
    }
    /// Read `key` without knowing its digest (small self-checking records such as a
    /// job's manifest); `None` if absent.
    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = key;
        Err(StoreError::Unsupported { store: self.describe(), op: "get_raw" })
    }
    /// Whether a call may block its thread on I/O (false only for process memory):
    /// the leader runs store calls of a store that does not block in place, without
    /// handing its async worker thread over first.
    fn blocks(&self) -> bool {
        true
    }
    /// List the jobs that have artifacts here, with their newest modification time
    /// (for `gc --older-than`). Stores that cannot list return
    /// [`StoreError::Unsupported`].
    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        Err(StoreError::Unsupported { store: self.describe(), op: "list_jobs" })
    }
}

/// Options of remote stores that do not fit in a spec string (CLI flags).
#[derive(Clone, Debug, Default)]
pub struct StoreOptions {
    /// S3 endpoint URL (`http://127.0.0.1:9000` for MinIO/moto/s3s-fs); `None` = AWS
    /// (or `AWS_ENDPOINT_URL[_S3]` from the environment).
    pub s3_endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most non-AWS servers.
    pub s3_path_style: bool,
    /// Region; `None` = `AWS_REGION`/`AWS_DEFAULT_REGION`, the profile, else `us-east-1`.
    pub s3_region: Option<String>,
    /// Size of the local artifact cache in front of a remote store (0 = no cache).
    /// Local stores (`mem:`, `fs:`) are never wrapped.
    pub cache_bytes: u64,
}

/// Open a store from its spec with default [`StoreOptions`]: `mem:`, `fs:DIR`,
/// `s3://bucket/prefix`.
pub fn open_store(spec: &str) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    open_store_with(spec, &StoreOptions::default())
}

/// Open a store from its spec: `mem:`, `fs:DIR`, `s3://bucket/prefix`.
///
/// An S3 store is validated before this returns (the bucket must exist and the
/// credentials must be accepted; see [`S3Store::connect`]).
///
/// ```
/// use proofline_runtime::store::{StoreOptions, open_store_with};
/// let store = open_store_with("mem:", &StoreOptions::default()).unwrap();
/// assert_eq!(store.describe(), "mem:");
/// ```
pub fn open_store_with(spec: &str, opts: &StoreOptions) -> Result<Arc<dyn ArtifactStore>, StoreError> {
    if spec.starts_with("s3://") {
        let mut config = S3Config::from_spec(spec)?;
        config.endpoint = opts.s3_endpoint.clone();
        config.path_style = opts.s3_path_style;
        config.region = opts.s3_region.clone();
        let s3: Arc<dyn ArtifactStore> = Arc::new(S3Store::connect(config)?);
        let store: Arc<dyn ArtifactStore> = Arc::new(MeteredStore::new(s3, StoreKind::S3));
        if opts.cache_bytes > 0 {
            return Ok(Arc::new(CachedStore::new(store, opts.cache_bytes)));
        }
        return Ok(store);
    }
    if spec == "mem:" || spec == "mem" {
        return Ok(Arc::new(MeteredStore::new(Arc::new(MemStore::default()), StoreKind::Mem)));
    }
    if let Some(dir) = spec.strip_prefix("fs:") {
        if dir.is_empty() {
            return Err(StoreError::InvalidSpec {
                spec: spec.into(),
                reason: "fs: needs a directory, e.g. fs:./artifacts".into(),
            });
        }
        return Ok(Arc::new(MeteredStore::new(Arc::new(FsStore::open(dir)?), StoreKind::Fs)));
    }
    Err(StoreError::InvalidSpec {
        spec: spec.into(),
        reason: "expected mem:, fs:DIR or s3://bucket/prefix".into(),
    })
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`), for names
/// that must differ between containers that share a volume but all run as PID 1.
pub fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String =
        name.trim().chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.').collect();
    if name.is_empty() { "unknown-host".into() } else { name }
}

/// 16 hex digits unlikely to repeat across calls, processes and hosts: host name, pid,
/// time, a counter and the OS-seeded keys of std's `RandomState`, hashed.
pub(crate) fn unique_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let mut random = std::collections::hash_map::RandomState::new().build_hasher();
    random.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut h = blake3::Hasher::new();
    h.update(HOST.get_or_init(hostname).as_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&random.finish().to_le_bytes());
    h.finalize().to_hex()[..16].to_owned()
}

/// Build the reference of `bytes` stored under `uri`.
pub(crate) fn reference(uri: String, bytes: &[u8]) -> ArtifactRef {
    ArtifactRef { uri, blake3: *blake3::hash(bytes).as_bytes(), len: bytes.len() as u64 }
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
        store.put_raw("job-a/manifest", b"{}").unwrap();
        assert_eq!(store.get_raw("job-a/manifest").unwrap().as_deref(), Some(&b"{}"[..]));
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
        let jobs = store.list_jobs().unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!((jobs[0].job.as_str(), jobs[0].objects, jobs[0].bytes), ("job-b", 1, 4));
        assert!(jobs[0].newest > SystemTime::UNIX_EPOCH);
    }

    #[test]
    fn mem_store_contract() {
        exercise(&MemStore::default());
        let metered = MeteredStore::new(Arc::new(MemStore::default()), StoreKind::Mem);
        assert!(!metered.blocks(), "process memory never blocks, metered or not");
    }

    #[test]
    fn fs_store_contract_and_corruption_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_str().unwrap()).unwrap();
        assert!(store.blocks());
        exercise(&store);
        let r = store.put("job-c/agg-0-1", b"payload").unwrap();
        std::fs::write(dir.path().join("job-c/agg-0-1"), b"paylaod").unwrap();
        let err = store.get(&r).unwrap_err().to_string();
        assert!(err.contains("job-c/agg-0-1") && err.contains("BLAKE3 mismatch"), "{err}");
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
                .contains("expected mem:, fs:DIR or s3://bucket/prefix")
        );
    }
}
