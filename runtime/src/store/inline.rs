//! Inline artifacts: bytes small enough to travel inside the reference itself.
//!
//! A task's input or output of at most [`INLINE_MAX`] bytes is not written to the store:
//! its [`ArtifactRef`] carries it, hex-encoded in the uri (`inline:6869`), with the
//! usual BLAKE3 digest and length. That saves a store round trip per task (two for a
//! segment: its payload and its proof) where the bytes are smaller than the reference
//! would be anyway: sim workloads, and any plugin with small proofs. Such an artifact
//! cannot be lost or damaged in the store; a damaged message is caught by the digest.
//!
//! [`save`] and [`load`] decide: inline when small, the store otherwise. Readers of
//! task artifacts (lanes, wrap) go through [`load`].

use super::{ArtifactStore, StoreError, check};
use crate::task::ArtifactRef;

/// The largest artifact carried inline, in bytes.
pub const INLINE_MAX: usize = 128;

/// The uri scheme of inline artifacts.
pub const INLINE_SCHEME: &str = "inline:";

/// The reference of `bytes`, carried inline.
pub fn inline(bytes: &[u8]) -> ArtifactRef {
    ArtifactRef { blake3: *blake3::hash(bytes).as_bytes(), ..inline_unhashed(bytes) }
}

/// [`inline`] without the digest (all zeros), for a caller that kept it.
pub(crate) fn inline_unhashed(bytes: &[u8]) -> ArtifactRef {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Made once per segment dispatched (from the leader's compact table): one
    // allocation, one pass.
    let mut uri = vec![0u8; INLINE_SCHEME.len() + 2 * bytes.len()];
    let (scheme, digits) = uri.split_at_mut(INLINE_SCHEME.len());
    scheme.copy_from_slice(INLINE_SCHEME.as_bytes());
    for (pair, &b) in digits.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 15)];
    }
    let uri = String::from_utf8(uri).expect("ASCII");
    ArtifactRef { uri, blake3: [0; 32], len: bytes.len() as u64 }
}

/// The bytes `artifact` carries inline, if it is an inline reference exactly as
/// [`inline`] writes it (so that [`inline_unhashed`] makes the same uri again).
pub(crate) fn inline_bytes(artifact: &ArtifactRef) -> Option<Vec<u8>> {
    let hex = artifact.uri.strip_prefix(INLINE_SCHEME)?;
    let bytes = unhex(hex.as_bytes())?;
    let exact = bytes.len() <= INLINE_MAX
        && bytes.len() as u64 == artifact.len
        && hex.bytes().all(|c| !c.is_ascii_uppercase());
    exact.then_some(bytes)
}

/// Hex digits to bytes; `None` unless every pair is two lowercase or uppercase digits.
fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks_exact(2).map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?)).collect()
}

/// Whether `artifact` is carried inline.
pub fn is_inline(artifact: &ArtifactRef) -> bool {
    artifact.uri.starts_with(INLINE_SCHEME)
}

/// Store `bytes` under `key()`, or inline them when they are at most [`INLINE_MAX`]
/// (then no key is made).
pub fn save(
    store: &dyn ArtifactStore,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<ArtifactRef, StoreError> {
    if bytes.len() <= INLINE_MAX { Ok(inline(bytes)) } else { store.put(&key(), bytes) }
}

/// Read an artifact, inline or from `store`, checked against its digest.
pub fn load(store: &dyn ArtifactStore, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
    match artifact.uri.strip_prefix(INLINE_SCHEME) {
        Some(hex) => {
            let bytes = unhex(hex.as_bytes()).ok_or_else(|| StoreError::Corrupt {
                uri: artifact.uri.chars().take(48).collect(),
                reason: "inline artifact is not hex".into(),
            })?;
            check(artifact, bytes)
        }
        None => store.get(artifact),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn small_artifacts_travel_inline_and_large_ones_go_to_the_store() {
        let store = MemStore::default();
        let small = save(&store, || "job-1/seg-0".into(), b"hi").unwrap();
        assert_eq!(small.uri, "inline:6869");
        assert!(is_inline(&small));
        assert_eq!(load(&store, &small).unwrap(), b"hi");
        assert!(store.get_raw("job-1/seg-0").unwrap().is_none(), "nothing written");

        let large_bytes = vec![7u8; INLINE_MAX + 1];
        let large = save(&store, || "job-1/seg-1".into(), &large_bytes).unwrap();
        assert!(!is_inline(&large));
        assert_eq!(load(&store, &large).unwrap(), large_bytes);
        let edge = save(&store, || "job-1/seg-2".into(), &large_bytes[..INLINE_MAX]).unwrap();
        assert!(is_inline(&edge));
        assert_eq!(load(&store, &edge).unwrap(), &large_bytes[..INLINE_MAX]);
    }

    #[test]
    fn damaged_inline_artifacts_are_refused() {
        let store = MemStore::default();
        let mut flipped = inline(b"proof");
        flipped.uri.replace_range(7..9, "00");
        assert!(matches!(load(&store, &flipped), Err(StoreError::Corrupt { .. })));
        let mut not_hex = inline(b"proof");
        not_hex.uri.push('z');
        assert!(matches!(load(&store, &not_hex), Err(StoreError::Corrupt { .. })));
        let mut wrong_digest = inline(b"proof");
        wrong_digest.blake3[0] ^= 1;
        assert!(matches!(load(&store, &wrong_digest), Err(StoreError::Corrupt { .. })));
    }
}
