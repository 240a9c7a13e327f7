//! The plan's segments as the leader holds them while a job runs: one byte arena and
//! two numbers per segment, not a [`SegmentRef`] (a struct and a heap string) each.
//!
//! A segment's reference is made again when its task goes out. Each entry in the arena
//! is a tag, then the payload's BLAKE3 digest, then:
//! * `INLINE`: the payload's bytes (at most [`INLINE_MAX`]); the uri is made from them;
//! * `STORED`: the payload's length (8 bytes, little-endian), then its uri.
//!
//! For a million no-op sim segments (29-byte payloads) that is 78 bytes per segment
//! instead of about 150.
//!
//! A large plan is not held whole at all: [`SegmentPages`] keeps every segment's cost
//! (8 bytes) and only the pages of references that are being dispatched or are out
//! with workers; the others are read back from the manifest's parts in the store
//! (one part per page) when the ledger asks for them.
//!
//! [`INLINE_MAX`]: crate::store::inline::INLINE_MAX

use std::collections::BTreeMap;
use std::ops::Range;

use super::journal::SegmentRef;
use crate::store::inline;
use crate::task::ArtifactRef;

const INLINE: u8 = 0;
const STORED: u8 = 1;

/// Every segment of a plan, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentTable {
    arena: Vec<u8>,
    /// Where each entry ends in `arena`.
    ends: Vec<u64>,
    costs: Vec<u64>,
}

impl SegmentTable {
    pub fn with_capacity(segments: usize) -> Self {
        Self { arena: Vec::new(), ends: Vec::with_capacity(segments), costs: Vec::with_capacity(segments) }
    }

    pub fn push(&mut self, segment: &SegmentRef) {
        self.push_known(segment, inline::inline_bytes(&segment.payload).as_deref());
    }

    /// [`push`](Self::push) for a caller that has the payload's bytes when it is inline
    /// (`inline` must be what `segment.payload` carries): no hex to decode.
    pub fn push_known(&mut self, segment: &SegmentRef, inline: Option<&[u8]>) {
        let payload = &segment.payload;
        match inline {
            Some(bytes) => {
                self.arena.push(INLINE);
                self.arena.extend_from_slice(&payload.blake3);
                self.arena.extend_from_slice(bytes);
            }
            None => {
                self.arena.push(STORED);
                self.arena.extend_from_slice(&payload.blake3);
                self.arena.extend_from_slice(&payload.len.to_le_bytes());
                self.arena.extend_from_slice(payload.uri.as_bytes());
            }
        }
        self.ends.push(self.arena.len() as u64);
        self.costs.push(segment.cost);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Segment `i`'s cost estimate.
    pub fn cost(&self, i: usize) -> u64 {
        self.costs[i]
    }

    /// The summed cost of segments `range`.
    pub fn cost_of(&self, range: std::ops::Range<usize>) -> u64 {
        self.costs[range].iter().sum()
    }

    /// Segment `i`'s payload reference, as it was pushed.
    pub fn payload(&self, i: usize) -> ArtifactRef {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let entry = &self.arena[start..self.ends[i] as usize];
        let (tag, rest) = entry.split_first().expect("an entry has a tag");
        let (digest, rest) = rest.split_at(32);
        let blake3: [u8; 32] = digest.try_into().expect("32 bytes");
        match *tag {
            INLINE => ArtifactRef { blake3, ..inline::inline_unhashed(rest) },
            _ => {
                let (len, uri) = rest.split_at(8);
                let len = u64::from_le_bytes(len.try_into().expect("8 bytes"));
                let uri = String::from_utf8(uri.to_vec()).expect("pushed from a String");
                ArtifactRef { uri, blake3, len }
            }
        }
    }

    /// Segment `i` as a [`SegmentRef`].
    pub fn get(&self, i: usize) -> SegmentRef {
        SegmentRef { payload: self.payload(i), cost: self.cost(i) }
    }
}

/// A plan's segments, by pages: all costs, and the references of the pages loaded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SegmentPages {
    costs: Vec<u64>,
    /// Segments per page (every page but the last is full).
    per_page: usize,
    /// Whether pages can be let go and loaded again (the store holds them); if not,
    /// page 0 holds every segment for good.
    paged: bool,
    loaded: BTreeMap<usize, SegmentTable>,
}

impl SegmentPages {
    /// Every segment in memory, for good (a plan small enough to be one page).
    pub fn held(table: SegmentTable) -> Self {
        let costs = table.costs.clone();
        let per_page = table.len().max(1);
        Self { costs, per_page, paged: false, loaded: BTreeMap::from([(0, table)]) }
    }

    /// Segments with these costs, in pages of `per_page` read from the store on demand.
    pub fn paged(costs: Vec<u64>, per_page: usize) -> Self {
        Self { costs, per_page: per_page.max(1), paged: true, loaded: BTreeMap::new() }
    }

    pub fn len(&self) -> usize {
        self.costs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.costs.is_empty()
    }

    /// Segment `i`'s cost estimate.
    pub fn cost(&self, i: usize) -> u64 {
        self.costs[i]
    }

    /// The summed cost of segments `range`.
    pub fn cost_of(&self, range: Range<usize>) -> u64 {
        self.costs[range].iter().sum()
    }

    /// The page segment `i` is on.
    pub fn page_of(&self, i: usize) -> usize {
        i / self.per_page
    }

    /// The segments on `page`.
    pub fn page_range(&self, page: usize) -> Range<usize> {
        (page * self.per_page).min(self.len())..((page + 1) * self.per_page).min(self.len())
    }

    pub fn pages(&self) -> usize {
        self.len().div_ceil(self.per_page)
    }

    pub fn is_loaded(&self, page: usize) -> bool {
        self.loaded.contains_key(&page)
    }

    /// Pages held now.
    pub fn loaded(&self) -> usize {
        self.loaded.len()
    }

    /// Take in `page`, read back from the store; `false` (and nothing kept) if it is not
    /// one of this plan's pages or does not have that page's segments and costs.
    pub fn load(&mut self, page: usize, table: SegmentTable) -> bool {
        let range = self.page_range(page);
        let fits = page < self.pages() && table.costs == self.costs[range];
        if fits {
            self.loaded.insert(page, table);
        }
        fits
    }

    /// Let `page` go, if it can be read back.
    pub fn unload(&mut self, page: usize) {
        if self.paged {
            self.loaded.remove(&page);
        }
    }

    /// Segment `i`'s payload reference; `None` while its page is not loaded.
    pub fn payload(&self, i: usize) -> Option<ArtifactRef> {
        let page = self.page_of(i);
        self.loaded.get(&page).map(|table| table.payload(i - page * self.per_page))
    }
}

impl FromIterator<SegmentRef> for SegmentTable {
    fn from_iter<I: IntoIterator<Item = SegmentRef>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut table = Self::with_capacity(iter.size_hint().0);
        iter.for_each(|s| table.push(&s));
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_come_back_as_pushed() {
        let stored = ArtifactRef { uri: "fs:/tmp/job-1/seg-1.in".into(), blake3: [7; 32], len: 4096 };
        let segments = [
            SegmentRef { payload: inline::inline(b"a small payload"), cost: 3 },
            SegmentRef { payload: stored, cost: 9 },
            SegmentRef { payload: inline::inline(b""), cost: 0 },
            SegmentRef { payload: inline::inline(&[0xab; inline::INLINE_MAX]), cost: 1 },
        ];
        let table: SegmentTable = segments.iter().cloned().collect();
        assert_eq!(table.len(), 4);
        for (i, s) in segments.iter().enumerate() {
            assert_eq!(&table.get(i), s, "segment {i}");
        }
        assert_eq!(table.cost_of(0..2), 12);
    }

    #[test]
    fn an_inline_reference_keeps_the_digest_it_was_given() {
        // The digest is the manifest's, never recomputed: a damaged payload stays caught.
        let mut payload = inline::inline(b"payload");
        payload.blake3[0] ^= 1;
        let table: SegmentTable = [SegmentRef { payload: payload.clone(), cost: 1 }].into_iter().collect();
        assert_eq!(table.payload(0), payload);
    }

    #[test]
    fn pages_hold_what_is_loaded_and_check_what_comes_back() {
        let refs: Vec<SegmentRef> =
            (0..10u8).map(|i| SegmentRef { payload: inline::inline(&[i]), cost: u64::from(i) }).collect();
        let page = |k: usize| refs[k * 4..(k * 4 + 4).min(10)].iter().cloned().collect::<SegmentTable>();
        let mut pages = SegmentPages::paged(refs.iter().map(|r| r.cost).collect(), 4);
        assert_eq!((pages.len(), pages.pages(), pages.page_range(2)), (10, 3, 8..10));
        assert_eq!(pages.payload(5), None, "nothing is held before it is loaded");
        assert_eq!(pages.cost_of(0..10), 45, "costs are always there");
        assert!(!pages.load(1, page(0)), "a page with other segments is refused");
        assert!(!pages.load(3, page(2)), "past the plan");
        assert!(pages.load(1, page(1)));
        assert_eq!(pages.payload(5), Some(refs[5].payload.clone()));
        pages.unload(1);
        assert_eq!((pages.payload(5), pages.loaded()), (None, 0));

        let mut held = SegmentPages::held(refs.iter().cloned().collect());
        held.unload(0);
        assert_eq!(held.payload(9), Some(refs[9].payload.clone()), "a held plan is never let go");
        assert_eq!(held.pages(), 1);
    }

    #[test]
    fn sim_segments_take_under_80_bytes_each() {
        let payload = inline::inline(&[1; 29]);
        let table: SegmentTable =
            (0..1000).map(|_| SegmentRef { payload: payload.clone(), cost: 1 }).collect();
        let bytes = table.arena.len() + 16 * table.len();
        assert!(bytes / table.len() < 80, "{} bytes per segment", bytes / table.len());
    }
}
