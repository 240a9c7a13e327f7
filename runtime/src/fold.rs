//! The streaming adjacent fold: as soon as two adjacent ranges are finished, pair them.
//!
//! Not level by level: a range waits only for its neighbour, so a slow segment delays
//! only the aggregations that need it. The fold needs only associativity.

use std::collections::BTreeMap;

/// A finished, not yet folded range `start..end` and the value proving it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished<T> {
    pub start: u32,
    pub end: u32,
    /// Height of the fold tree under this range (segments are 0).
    pub depth: u32,
    pub value: T,
}

/// What the fold wants done next after a range finished.
#[derive(Debug, PartialEq, Eq)]
pub enum FoldStep<T> {
    /// Aggregate these two adjacent ranges (left ends where right starts).
    Aggregate(Finished<T>, Finished<T>),
    /// This range covers every segment: the fold is complete.
    Root(Finished<T>),
    /// Nothing to do until a neighbour finishes.
    Wait,
}

/// Finished ranges waiting for a neighbour, over segments `0..n`.
///
/// ```
/// use proofline_runtime::fold::{Fold, FoldStep};
/// let mut fold = Fold::new(3);
/// assert_eq!(fold.finish(2, 3, 0, "c"), FoldStep::Wait);
/// let FoldStep::Aggregate(l, r) = fold.finish(1, 2, 0, "b") else { panic!() };
/// assert_eq!((l.start, r.end), (1, 3));
/// // 1..3 is now being aggregated, so 0..1 waits for it.
/// assert_eq!(fold.finish(0, 1, 0, "a"), FoldStep::Wait);
/// let FoldStep::Aggregate(l, r) = fold.finish(1, 3, 1, "bc") else { panic!() };
/// assert_eq!((l.value, r.value), ("a", "bc"));
/// assert!(matches!(fold.finish(0, 3, 2, "abc"), FoldStep::Root(_)));
/// ```
#[derive(Debug)]
pub struct Fold<T> {
    segments: u32,
    /// Finished ranges keyed by start.
    waiting: BTreeMap<u32, Finished<T>>,
}

impl<T> Fold<T> {
    pub fn new(segments: u32) -> Self {
        Self { segments, waiting: BTreeMap::new() }
    }

    /// Record that `start..end` is finished and say what to do next.
    pub fn finish(&mut self, start: u32, end: u32, depth: u32, value: T) -> FoldStep<T> {
        let done = Finished { start, end, depth, value };
        if start == 0 && end == self.segments {
            return FoldStep::Root(done);
        }
        let left_neighbour = self
            .waiting
            .range(..start)
            .next_back()
            .filter(|(_, range)| range.end == start)
            .map(|(&key, _)| key);
        if let Some(key) = left_neighbour {
            let left = self.waiting.remove(&key).expect("present");
            return FoldStep::Aggregate(left, done);
        }
        if let Some(right) = self.waiting.remove(&end) {
            return FoldStep::Aggregate(done, right);
        }
        self.waiting.insert(start, done);
        FoldStep::Wait
    }

    /// Ranges currently waiting for a neighbour.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drive a fold to its root with segments finishing in `order`, folding
    /// immediately; returns the root's value (a string of the fold shape).
    fn run(n: u32, order: &[u32]) -> (String, u32) {
        let mut fold = Fold::new(n);
        let mut root = None;
        let mut aggregations = 0;
        for &i in order {
            let mut step = fold.finish(i, i + 1, 0, i.to_string());
            loop {
                match step {
                    FoldStep::Wait => break,
                    FoldStep::Root(r) => {
                        root = Some(r);
                        break;
                    }
                    FoldStep::Aggregate(l, r) => {
                        aggregations += 1;
                        assert_eq!(l.end, r.start, "only adjacent ranges fold");
                        let value = format!("({} {})", l.value, r.value);
                        step = fold.finish(l.start, r.end, l.depth.max(r.depth) + 1, value);
                    }
                }
            }
        }
        let root = root.expect("fold completes");
        assert_eq!((root.start, root.end), (0, n));
        (root.value, aggregations)
    }

    #[test]
    fn folds_any_completion_order_into_one_root_of_n_minus_1_aggregations() {
        assert_eq!(run(1, &[0]), ("0".into(), 0));
        assert_eq!(run(4, &[0, 1, 2, 3]).1, 3);
        for order in [[3, 1, 0, 2, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3]] {
            let (shape, aggs) = run(5, &order);
            assert_eq!(aggs, 4);
            // Leaves appear in order, whatever the shape.
            let leaves: String = shape.chars().filter(|c| c.is_ascii_digit()).collect();
            assert_eq!(leaves, "01234");
        }
    }
}
