//! A bounded local LRU cache of artifact bytes in front of a (remote) store.
//!
//! `put` writes through and keeps the bytes, so a worker that produced a child proof
//! does not download it again to aggregate it; `get` serves cached bytes only when
//! the reference's BLAKE3 digest and length match the cached ones, otherwise it reads
//! (and verifies) through the inner store.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::{ArtifactStore, JobArtifacts, StoreError};
use crate::task::ArtifactRef;

/// Counters of a [`CachedStore`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// `get`s served from the cache.
    pub hits: u64,
    /// `get`s that went to the inner store.
    pub misses: u64,
    /// Bytes held now.
    pub bytes: u64,
    /// Artifacts held now.
    pub entries: u64,
    /// Artifacts dropped to make room.
    pub evictions: u64,
    /// Bytes served from the cache (not downloaded).
    pub hit_bytes: u64,
}

struct Entry {
    bytes: Arc<[u8]>,
    blake3: [u8; 32],
    tick: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// Recency order: tick -> uri (the smallest tick is the least recently used).
    order: BTreeMap<u64, String>,
    tick: u64,
    stats: CacheStats,
}

impl Lru {
    fn touch(&mut self, uri: &str) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(e) = self.entries.get_mut(uri) {
            self.order.remove(&e.tick);
            e.tick = tick;
            self.order.insert(tick, uri.to_owned());
        }
    }

    fn remove(&mut self, uri: &str) {
        if let Some(e) = self.entries.remove(uri) {
            self.order.remove(&e.tick);
            self.stats.bytes -= e.bytes.len() as u64;
            self.stats.entries -= 1;
        }
    }

    fn insert(&mut self, limit: u64, uri: &str, bytes: Arc<[u8]>, blake3: [u8; 32]) {
        self.remove(uri);
        let len = bytes.len() as u64;
        if len > limit {
            return;
        }
        while self.stats.bytes + len > limit {
            let Some((_, victim)) = self.order.pop_first() else {
                break;
            };
            if let Some(e) = self.entries.remove(&victim) {
                self.stats.bytes -= e.bytes.len() as u64;
                self.stats.entries -= 1;
                self.stats.evictions += 1;
            }
        }
        self.tick += 1;
        self.order.insert(self.tick, uri.to_owned());
        self.entries.insert(uri.to_owned(), Entry { bytes, blake3, tick: self.tick });
        self.stats.bytes += len;
        self.stats.entries += 1;
    }
}

/// Wraps a store with a bounded LRU of artifact bytes keyed by uri.
///
/// ```
/// use std::sync::Arc;
/// use proofline_runtime::store::{ArtifactStore, CachedStore, MemStore};
/// let store = CachedStore::new(Arc::new(MemStore::default()), 64 << 20);
/// let r = store.put("job-1/seg-0", b"proof").unwrap();
/// assert_eq!(store.get(&r).unwrap(), b"proof"); // served from the cache
/// assert_eq!((store.stats().hits, store.stats().misses), (1, 0));
/// ```
pub struct CachedStore {
    inner: Arc<dyn ArtifactStore>,
    limit: u64,
    lru: Mutex<Lru>,
}

impl CachedStore {
    /// Cache at most `limit_bytes` of artifacts; larger artifacts are never cached.
    pub fn new(inner: Arc<dyn ArtifactStore>, limit_bytes: u64) -> Self {
        crate::metrics::store::cache_created();
        Self { inner, limit: limit_bytes, lru: Mutex::new(Lru::default()) }
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        self.lru().stats
    }

    /// The wrapped store.
    pub fn inner(&self) -> &Arc<dyn ArtifactStore> {
        &self.inner
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ArtifactStore for CachedStore {
    fn describe(&self) -> String {
        format!("{} (cache {} MiB)", self.inner.describe(), self.limit >> 20)
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError> {
        let artifact = self.inner.put(key, bytes)?;
        if bytes.len() as u64 <= self.limit {
            self.lru().insert(self.limit, &artifact.uri, bytes.into(), artifact.blake3);
        }
        Ok(artifact)
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        {
            let mut lru = self.lru();
            let hit = lru.entries.get(&artifact.uri).and_then(|e| {
                (e.blake3 == artifact.blake3 && e.bytes.len() as u64 == artifact.len).then(|| e.bytes.clone())
            });
            if let Some(bytes) = hit {
                lru.touch(&artifact.uri);
                lru.stats.hits += 1;
                crate::metrics::store::cache_hit();
                lru.stats.hit_bytes += bytes.len() as u64;
                return Ok(bytes.to_vec());
            }
            lru.stats.misses += 1;
            crate::metrics::store::cache_miss();
        }
        // The inner store verifies the bytes against the reference.
        let bytes = self.inner.get(artifact)?;
        if bytes.len() as u64 <= self.limit {
            self.lru().insert(self.limit, &artifact.uri, bytes.as_slice().into(), artifact.blake3);
        }
        Ok(bytes)
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get_raw(key)
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        {
            let mut lru = self.lru();
            let doomed: Vec<String> = lru
                .entries
                .keys()
                .filter(|uri| {
                    uri.split_once(':').is_some_and(|(_, key)| {
                        key.starts_with(prefix) && key[prefix.len()..].starts_with('/')
                    })
                })
                .cloned()
                .collect();
            for uri in doomed {
                lru.remove(&uri);
            }
        }
        self.inner.delete_prefix(prefix)
    }

    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        self.inner.list_jobs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn cached(limit: u64) -> (MemStore, CachedStore) {
        let mem = MemStore::default();
        let store = CachedStore::new(Arc::new(mem.clone()), limit);
        (mem, store)
    }

    #[test]
    fn put_then_get_is_a_hit_and_foreign_reads_are_misses() {
        let (mem, store) = cached(1 << 20);
        let r = store.put("job/a", b"alpha").unwrap();
        assert_eq!(store.get(&r).unwrap(), b"alpha");
        // Written by someone else: the first read misses, the second hits.
        let other = mem.put("job/b", b"beta").unwrap();
        assert_eq!(store.get(&other).unwrap(), b"beta");
        assert_eq!(store.get(&other).unwrap(), b"beta");
        let s = store.stats();
        assert_eq!((s.hits, s.misses, s.entries, s.bytes), (2, 1, 2, 9));
        assert_eq!(s.hit_bytes, 9);
    }

    #[test]
    fn a_reference_with_another_digest_is_not_served_from_the_cache() {
        let (mem, store) = cached(1 << 20);
        let old = store.put("job/a", b"old").unwrap();
        // Someone rewrote the artifact behind the cache's back.
        let new = mem.put("job/a", b"new!").unwrap();
        assert_eq!(store.get(&new).unwrap(), b"new!");
        assert_eq!(store.stats().misses, 1);
        // ...and a bad reference is still refused by the inner store's check.
        let mut bad = old.clone();
        bad.blake3[0] ^= 1;
        assert!(matches!(store.get(&bad), Err(StoreError::Corrupt { .. })));
        // The cache now holds the new bytes.
        assert_eq!(store.get(&new).unwrap(), b"new!");
        assert_eq!(store.stats().hits, 1);
    }

    #[test]
    fn evicts_least_recently_used_and_skips_oversized() {
        let (_mem, store) = cached(10);
        let a = store.put("job/a", b"aaaa").unwrap();
        let b = store.put("job/b", b"bbbb").unwrap();
        store.get(&a).unwrap(); // a is now more recent than b
        let c = store.put("job/c", b"cccc").unwrap(); // evicts b
        let big = store.put("job/big", b"0123456789ab").unwrap(); // never cached
        let s = store.stats();
        assert_eq!((s.entries, s.bytes, s.evictions), (2, 8, 1));
        store.get(&a).unwrap();
        store.get(&c).unwrap();
        store.get(&b).unwrap();
        store.get(&big).unwrap();
        let s = store.stats();
        assert_eq!((s.hits, s.misses), (3, 2));
        assert!(s.bytes <= 10);
    }

    #[test]
    fn delete_prefix_drops_cached_entries_of_that_job_only() {
        let (_mem, store) = cached(1 << 20);
        let a = store.put("job-1/a", b"a").unwrap();
        let b = store.put("job-10/b", b"b").unwrap();
        store.delete_prefix("job-1").unwrap();
        assert!(matches!(store.get(&a), Err(StoreError::NotFound { .. })));
        assert_eq!(store.get(&b).unwrap(), b"b");
        assert_eq!(store.stats().entries, 1);
    }
}
