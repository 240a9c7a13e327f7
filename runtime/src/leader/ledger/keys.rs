//! Task keys: a task's range names it (`seg-N` is `(N, N + 1)`, `agg-A-B` is
//! `(A, B + 1)`), so the ledger's maps are keyed by two numbers, not by strings.

use std::collections::HashMap;

use super::Key;
use crate::task::{aggregate_task_id, segment_task_id};

/// A map keyed by [`Key`], hashed by multiplying (keys are not chosen by anyone
/// outside: they are ranges of the plan, so no defence against collisions is needed,
/// and SipHash cost more than the rest of a lookup).
pub(crate) type KeyMap<V> = HashMap<Key, V, std::hash::BuildHasherDefault<KeyHasher>>;

/// The hasher of [`KeyMap`].
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.write_u64(u64::from(b)));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The id of the task over `key`: `seg-N` or `agg-A-B`.
pub(crate) fn id_of(key: Key) -> String {
    if key.1 == key.0 + 1 { segment_task_id(key.0) } else { aggregate_task_id(key.0, key.1) }
}

/// The range a task id names (no allocation); `None` for anything else, including
/// numbers with a sign or leading zeros: an id maps to one range and back.
pub(crate) fn key_of(id: &str) -> Option<Key> {
    fn number(s: &str) -> Option<u32> {
        let canonical =
            !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
        if canonical { s.parse().ok() } else { None }
    }
    if let Some(n) = id.strip_prefix("seg-") {
        let n = number(n)?;
        return Some((n, n.checked_add(1)?));
    }
    let (a, b) = id.strip_prefix("agg-")?.split_once('-')?;
    let (a, b) = (number(a)?, number(b)?);
    if a < b { Some((a, b.checked_add(1)?)) } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_keys_map_one_to_one_and_anything_else_is_refused() {
        for key in [(0, 1), (17, 18), (0, 2), (16, 20), (u32::MAX - 1, u32::MAX)] {
            assert_eq!(key_of(&id_of(key)), Some(key), "{key:?}");
        }
        assert_eq!(id_of((16, 20)), "agg-16-19");
        for bad in [
            "",
            "seg-",
            "seg-03",
            "seg-+3",
            "seg-4294967295",
            "agg-3-3",
            "agg-4-3",
            "agg-0-03",
            "agg-1",
            "x-1",
        ] {
            assert_eq!(key_of(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn key_maps_spread_neighbouring_ranges() {
        let mut map: KeyMap<u32> = KeyMap::default();
        for i in 0..10_000 {
            map.insert((i, i + 1), i);
        }
        assert_eq!(map.len(), 10_000);
        assert_eq!(map.get(&(777, 778)), Some(&777));
        let hashes: std::collections::HashSet<u64> = (0..1000u32)
            .map(|i| {
                std::hash::BuildHasher::hash_one(
                    &std::hash::BuildHasherDefault::<KeyHasher>::default(),
                    (i, i + 1),
                ) >> 57
            })
            .collect();
        assert!(hashes.len() > 64, "the top bits vary: {}", hashes.len());
    }
}
