//! Artifact store metrics: operation latency and bytes by op and store, and the hits
//! and misses of the local cache in front of a remote store.
//!
//! Stores opened with [`open_store_with`](crate::store::open_store_with) are wrapped
//! in a [`MeteredStore`](crate::store::MeteredStore) that calls [`operation`]; the
//! [`CachedStore`](crate::store::CachedStore) calls [`cache_hit`] and [`cache_miss`].

use std::time::Duration;

use metrics::{Counter, Histogram};

use super::spec::{CACHE_HITS, CACHE_MISSES, STORE_BYTES, STORE_OPERATION};
use super::{Lazy, counter, histogram};

/// The `op` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    Get = 0,
    Put = 1,
    Delete = 2,
    List = 3,
}

impl StoreOp {
    pub const ALL: [StoreOp; 4] = [StoreOp::Get, StoreOp::Put, StoreOp::Delete, StoreOp::List];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Put => "put",
            Self::Delete => "delete",
            Self::List => "list",
        }
    }
}

/// The `store` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    Fs = 0,
    S3 = 1,
    Mem = 2,
}

impl StoreKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Fs => "fs",
            Self::S3 => "s3",
            Self::Mem => "mem",
        }
    }
}

/// One store's series: latency for every op, bytes for get and put.
struct StoreMeters {
    latency: [Histogram; 4],
    bytes: [Counter; 2],
}

impl StoreMeters {
    fn register(store: StoreKind) -> Self {
        let s = store.as_str();
        Self {
            latency: StoreOp::ALL.map(|op| histogram(STORE_OPERATION, &[("op", op.as_str()), ("store", s)])),
            bytes: [StoreOp::Get, StoreOp::Put]
                .map(|op| counter(STORE_BYTES, &[("op", op.as_str()), ("store", s)])),
        }
    }
}

static STORES: [Lazy<StoreMeters>; 3] = [
    Lazy::new(|| StoreMeters::register(StoreKind::Fs)),
    Lazy::new(|| StoreMeters::register(StoreKind::S3)),
    Lazy::new(|| StoreMeters::register(StoreKind::Mem)),
];

static CACHE: Lazy<[Counter; 2]> = Lazy::new(|| [counter(CACHE_HITS, &[]), counter(CACHE_MISSES, &[])]);

/// Export `store`'s series at zero (called when it is opened).
pub fn opened(store: StoreKind) {
    let _ = STORES[store as usize].get();
}

/// An operation on `store` took `elapsed` and moved `bytes` (read by a get, written by
/// a put; ignored for delete and list).
#[inline]
pub fn operation(op: StoreOp, store: StoreKind, elapsed: Duration, bytes: u64) {
    if let Some(m) = STORES[store as usize].get() {
        m.latency[op as usize].record(elapsed.as_secs_f64());
        match op {
            StoreOp::Get => m.bytes[0].increment(bytes),
            StoreOp::Put => m.bytes[1].increment(bytes),
            StoreOp::Delete | StoreOp::List => {}
        }
    }
}

/// Export the cache series at zero (called when a cache is created).
pub fn cache_created() {
    let _ = CACHE.get();
}

/// A read was served from the local cache.
#[inline]
pub fn cache_hit() {
    if let Some(m) = CACHE.get() {
        m[0].increment(1);
    }
}

/// A read went past the local cache to the remote store.
#[inline]
pub fn cache_miss() {
    if let Some(m) = CACHE.get() {
        m[1].increment(1);
    }
}
