//! [`MeteredStore`]: a store wrapper that reports every operation's latency and bytes
//! to the metrics (`proofline_store_operation_seconds{op,store}`,
//! `proofline_store_bytes_total{op,store}`).
//!
//! [`open_store_with`](super::open_store_with) wraps each store it opens (an S3 store
//! under its cache, so cache hits never count as S3 reads). Timing costs two clock
//! reads per operation; the recording itself is a table index and atomic adds.

use std::sync::Arc;
use std::time::Instant;

use super::{ArtifactStore, JobArtifacts, StoreError};
use crate::metrics::store::{self as meter, StoreKind, StoreOp};
use crate::task::ArtifactRef;

/// Wraps a store; reports its operations as `store` (fs, s3, mem).
pub struct MeteredStore {
    inner: Arc<dyn ArtifactStore>,
    kind: StoreKind,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn ArtifactStore>, kind: StoreKind) -> Self {
        meter::opened(kind);
        Self { inner, kind }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ArtifactStore> {
        &self.inner
    }

    fn timed<T>(&self, op: StoreOp, run: impl FnOnce() -> T, bytes: impl FnOnce(&T) -> u64) -> T {
        let started = Instant::now();
        let out = run();
        meter::operation(op, self.kind, started.elapsed(), bytes(&out));
        out
    }
}

impl ArtifactStore for MeteredStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError> {
        let len = bytes.len() as u64;
        self.timed(StoreOp::Put, || self.inner.put(key, bytes), |r| if r.is_ok() { len } else { 0 })
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        self.timed(StoreOp::Get, || self.inner.get(artifact), |r| r.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        self.timed(StoreOp::Delete, || self.inner.delete_prefix(prefix), |_| 0)
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let len = |r: &Result<Option<Vec<u8>>, StoreError>| match r {
            Ok(Some(b)) => b.len() as u64,
            _ => 0,
        };
        self.timed(StoreOp::Get, || self.inner.get_raw(key), len)
    }

    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        self.timed(StoreOp::List, || self.inner.list_jobs(), |_| 0)
    }

    fn blocks(&self) -> bool {
        self.inner.blocks()
    }

    fn put_raw(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let len = bytes.len() as u64;
        self.timed(StoreOp::Put, || self.inner.put_raw(key, bytes), |r| if r.is_ok() { len } else { 0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn operations_pass_through_and_are_counted() {
        crate::metrics::install().unwrap();
        let store = MeteredStore::new(Arc::new(MemStore::default()), StoreKind::Mem);
        let r = store.put("job-m/seg-0", b"twelve bytes").unwrap();
        assert_eq!(store.get(&r).unwrap(), b"twelve bytes");
        assert_eq!(store.describe(), "mem:");
        store.delete_prefix("job-m").unwrap();
        assert!(matches!(store.get(&r), Err(StoreError::NotFound { .. })));
        let text = crate::metrics::render();
        let value = |series: &str| {
            text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse::<f64>().ok()).unwrap_or(0.0)
        };
        assert!(value("proofline_store_bytes_total{op=\"put\",store=\"mem\"}") >= 12.0, "{text}");
        assert!(value("proofline_store_bytes_total{op=\"get\",store=\"mem\"}") >= 12.0, "{text}");
        assert!(
            value("proofline_store_operation_seconds_count{op=\"delete\",store=\"mem\"}") >= 1.0,
            "{text}"
        );
    }
}
