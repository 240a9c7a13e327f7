//! [`Plan`]: what a proof system makes of a job's input on the leader.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// Options the leader passes to [`ProofSystem::plan`](crate::ProofSystem::plan).
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Upper bound on one segment's cost, in the plugin's own unit
    /// (Keccak-f permutations for `keccak`). `None`: the plugin's default.
    pub segment_size: Option<u64>,
}

/// One segment of a plan: an opaque payload for
/// [`ProofSystem::prove_segment`](crate::ProofSystem::prove_segment).
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    pub payload: Vec<u8>,
    /// Cost estimate in the plugin's unit; used for scheduling and progress.
    pub cost: u64,
}

/// The result of planning a job: ordered segments `0..n` and what `wrap` needs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub segments: Segments,
    /// Opaque job statement handed to [`ProofSystem::wrap`](crate::ProofSystem::wrap)
    /// (e.g. the block header).
    pub meta: Vec<u8>,
    /// One line for humans: what is being proven.
    pub summary: String,
    /// A short, file-name-safe name for what is proven (`[A-Za-z0-9._-]`, e.g. the
    /// keccak plugin's `<block number>-<hash prefix>`): `batch` names proof files after it.
    pub name: String,
}

impl Plan {
    /// Whether `name` is a usable [`Plan::name`]: 1 to 96 characters of
    /// `[A-Za-z0-9._-]`, not starting with a dot.
    ///
    /// ```
    /// use proofline_plugin::Plan;
    /// assert!(Plan::is_valid_name("19807080-0b4c5b49"));
    /// assert!(!Plan::is_valid_name("../etc"));
    /// ```
    pub fn is_valid_name(name: &str) -> bool {
        (1..=96).contains(&name.len())
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }
}

/// Makes segment `i` of a plan whose segments are made on demand.
type MakeSegment = dyn Fn(usize) -> SegmentSpec + Send + Sync;

/// A plan's segments, in order: listed, or made on demand from their index.
///
/// A plan of a million small segments need not hold a million payloads at once: the
/// leader reads each segment once, in order, as it writes the job's manifest, so a
/// plugin whose segments follow from their index can hand over [`Segments::made`]
/// instead of a list. `make` must be deterministic (it may be called again for a
/// segment) and cheap.
///
/// ```
/// use proofline_plugin::{SegmentSpec, Segments};
/// let listed: Segments = vec![SegmentSpec { payload: vec![7], cost: 2 }].into();
/// let made = Segments::made(3, |i| SegmentSpec { payload: vec![i as u8], cost: 1 });
/// assert_eq!((listed.len(), listed.total_cost()), (1, 2));
/// assert_eq!(made.get(2).unwrap().payload, [2]);
/// assert_eq!(made.into_iter().map(|s| s.payload[0]).collect::<Vec<_>>(), [0, 1, 2]);
/// ```
#[derive(Clone)]
pub struct Segments(Source);

#[derive(Clone)]
enum Source {
    Listed(Vec<SegmentSpec>),
    Made { len: usize, make: Arc<MakeSegment> },
}

impl Segments {
    /// `len` segments, segment `i` made by `make(i)` when the leader reads it.
    pub fn made(len: usize, make: impl Fn(usize) -> SegmentSpec + Send + Sync + 'static) -> Self {
        Segments(Source::Made { len, make: Arc::new(make) })
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Source::Listed(list) => list.len(),
            Source::Made { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Segment `i`: borrowed if listed, made if not.
    pub fn get(&self, i: usize) -> Option<Cow<'_, SegmentSpec>> {
        match &self.0 {
            Source::Listed(list) => list.get(i).map(Cow::Borrowed),
            Source::Made { len, make } => (i < *len).then(|| Cow::Owned(make(i))),
        }
    }

    /// Every segment in order (made ones are made one at a time, as the iterator goes).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Cow<'_, SegmentSpec>> {
        (0..self.len()).map(|i| self.get(i).expect("index below len"))
    }

    /// The sum of every segment's cost.
    pub fn total_cost(&self) -> u64 {
        self.iter().map(|s| s.cost).sum()
    }

    /// Every segment in a list (made ones are all made now).
    pub fn into_vec(self) -> Vec<SegmentSpec> {
        match self.0 {
            Source::Listed(list) => list,
            made => Segments(made).into_iter().collect(),
        }
    }
}

impl fmt::Debug for Segments {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Listed(list) => f.debug_tuple("Listed").field(list).finish(),
            Source::Made { len, .. } => f.debug_struct("Made").field("len", len).finish_non_exhaustive(),
        }
    }
}

impl From<Vec<SegmentSpec>> for Segments {
    fn from(list: Vec<SegmentSpec>) -> Self {
        Segments(Source::Listed(list))
    }
}

impl FromIterator<SegmentSpec> for Segments {
    fn from_iter<I: IntoIterator<Item = SegmentSpec>>(iter: I) -> Self {
        Segments(Source::Listed(iter.into_iter().collect()))
    }
}

impl IntoIterator for Segments {
    type Item = SegmentSpec;
    type IntoIter = SegmentsIntoIter;

    /// Every segment in order, owned (made ones one at a time, as the iterator goes).
    fn into_iter(self) -> SegmentsIntoIter {
        SegmentsIntoIter(match self.0 {
            Source::Listed(list) => Owned::Listed(list.into_iter()),
            Source::Made { len, make } => Owned::Made { next: 0..len, make },
        })
    }
}

/// The owning iterator of [`Segments`].
pub struct SegmentsIntoIter(Owned);

enum Owned {
    Listed(std::vec::IntoIter<SegmentSpec>),
    Made { next: Range<usize>, make: Arc<MakeSegment> },
}

impl Iterator for SegmentsIntoIter {
    type Item = SegmentSpec;

    fn next(&mut self) -> Option<SegmentSpec> {
        match &mut self.0 {
            Owned::Listed(list) => list.next(),
            Owned::Made { next, make } => next.next().map(|i| make(i)),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Owned::Listed(list) => list.size_hint(),
            Owned::Made { next, .. } => next.size_hint(),
        }
    }
}

impl ExactSizeIterator for SegmentsIntoIter {}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(i: usize) -> SegmentSpec {
        SegmentSpec { payload: (i as u32).to_le_bytes().to_vec(), cost: i as u64 + 1 }
    }

    #[test]
    fn made_and_listed_segments_read_the_same() {
        let made = Segments::made(5, spec);
        let listed: Segments = (0..5).map(spec).collect();
        for s in [&made, &listed] {
            assert_eq!(s.len(), 5);
            assert_eq!(s.total_cost(), 15);
            assert_eq!(s.get(3).unwrap().payload, 3u32.to_le_bytes());
            assert!(s.get(5).is_none());
            let costs: Vec<u64> = s.iter().map(|x| x.cost).collect();
            assert_eq!(costs, [1, 2, 3, 4, 5]);
        }
        let a: Vec<_> = made.clone().into_iter().map(|s| s.payload).collect();
        let b: Vec<_> = listed.into_vec().into_iter().map(|s| s.payload).collect();
        assert_eq!(a, b);
        assert_eq!(made.into_iter().len(), 5);
    }

    #[test]
    fn made_segments_are_made_only_when_read() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let made = Segments::made(1_000_000, move |i| {
            counted.fetch_add(1, Ordering::Relaxed);
            spec(i)
        });
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        let mut it = made.into_iter();
        it.next();
        it.next();
        assert_eq!((calls.load(Ordering::Relaxed), it.len()), (2, 999_998));
    }
}
