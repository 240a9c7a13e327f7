//! Where a job's time went: one [`Span`] per task attempt, as the leader saw it.
//!
//! The ledger records a span when an attempt ends (success, failure, timeout, silence,
//! a duplicate success); the job actor adds wrap. A span's start is its end minus the
//! run time its worker reported, so queue time is not counted as work. Its end is when
//! the leader saw the result: up to the worker's result linger (`worker::linger`) late.
//! Renderers (the leader's `--timeline FILE.svg`) draw one row per lane and highlight
//! [`Timeline::critical_path`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a span did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Segment,
    Aggregate,
    Wrap,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanEnd {
    /// Its output is the one the job uses.
    Done,
    /// It succeeded after another attempt already had (first success wins).
    Duplicate,
    /// It failed (and was sent again, or failed the job).
    Failed,
    /// It ran past its timeout and was abandoned.
    TimedOut,
    /// Its worker went silent; the task was sent again.
    Lost,
}

impl SpanEnd {
    /// Whether the attempt's work was thrown away.
    pub fn is_wasted(self) -> bool {
        !matches!(self, Self::Done)
    }
}

/// One attempt of one task on one lane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Task id (`seg-3`, `agg-0-7`, `wrap`).
    pub task: String,
    pub kind: SpanKind,
    /// Segments `first..end` the task covers.
    pub first: u32,
    pub end: u32,
    pub attempt: u32,
    /// `worker/lane` that ran it (`leader` for wrap).
    pub lane: String,
    /// Since the job started.
    pub start: Duration,
    pub finish: Duration,
    pub outcome: SpanEnd,
}

/// Every recorded attempt of a job.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub spans: Vec<Span>,
    /// From the job's start to its end.
    pub elapsed: Duration,
}

impl Timeline {
    /// The lanes that ran something, in order of first use.
    pub fn lanes(&self) -> Vec<&str> {
        let mut lanes: Vec<&str> = Vec::new();
        let mut by_start: Vec<&Span> = self.spans.iter().collect();
        by_start.sort_by_key(|s| s.start);
        for s in by_start {
            if !lanes.contains(&s.lane.as_str()) {
                lanes.push(&s.lane);
            }
        }
        lanes
    }

    /// Indices of the spans on the fold's critical path, from wrap back to a segment:
    /// wrap, the root aggregation, then at each aggregation the child that finished
    /// last (the one it waited for), down to a segment. Only successful spans count.
    pub fn critical_path(&self) -> Vec<usize> {
        let done = |i: &usize| self.spans[*i].outcome == SpanEnd::Done;
        let mut path = Vec::new();
        let wrap = (0..self.spans.len()).filter(done).find(|&i| self.spans[i].kind == SpanKind::Wrap);
        path.extend(wrap);
        let Some(n) = self.spans.iter().filter(|s| s.kind != SpanKind::Wrap).map(|s| s.end).max() else {
            return path;
        };
        // The last successful span covering `first..end` (a repair may have rerun it).
        let covering = |first: u32, end: u32| {
            (0..self.spans.len())
                .filter(done)
                .filter(|&i| {
                    let s = &self.spans[i];
                    s.kind != SpanKind::Wrap && s.first == first && s.end == end
                })
                .max_by_key(|&i| self.spans[i].finish)
        };
        let mut at = covering(0, n);
        while let Some(i) = at {
            path.push(i);
            let s = &self.spans[i];
            if s.kind != SpanKind::Aggregate {
                break;
            }
            // The children split first..end at some m: find the left child with the
            // largest end below `end` that has a matching right sibling.
            let (first, end) = (s.first, s.end);
            let children =
                (first + 1..end).rev().find_map(|m| Some((covering(first, m)?, covering(m, end)?)));
            at = children.map(|(l, r)| if self.spans[l].finish >= self.spans[r].finish { l } else { r });
        }
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(
        task: &str,
        kind: SpanKind,
        range: (u32, u32),
        lane: &str,
        ms: (u64, u64),
        outcome: SpanEnd,
    ) -> Span {
        Span {
            task: task.into(),
            kind,
            first: range.0,
            end: range.1,
            attempt: 1,
            lane: lane.into(),
            start: Duration::from_millis(ms.0),
            finish: Duration::from_millis(ms.1),
            outcome,
        }
    }

    #[test]
    fn the_critical_path_follows_the_child_that_finished_last() {
        use SpanEnd::*;
        use SpanKind::*;
        let t = Timeline {
            spans: vec![
                span("seg-0", Segment, (0, 1), "w/0", (0, 10), Done),
                span("seg-1", Segment, (1, 2), "w/1", (0, 30), Failed),
                span("seg-1", Segment, (1, 2), "w/1", (30, 50), Done),
                span("seg-2", Segment, (2, 3), "w/0", (10, 20), Done),
                span("agg-0-1", Aggregate, (0, 2), "w/0", (50, 60), Done),
                span("agg-0-2", Aggregate, (0, 3), "w/1", (60, 70), Done),
                span("wrap", Wrap, (0, 3), "leader", (70, 80), Done),
            ],
            elapsed: Duration::from_millis(80),
        };
        assert_eq!(t.critical_path(), [6, 5, 4, 2]);
        assert_eq!(t.lanes(), ["w/0", "w/1", "leader"]);
    }

    #[test]
    fn a_job_of_one_segment_has_a_path_of_segment_and_wrap() {
        let t = Timeline {
            spans: vec![
                span("seg-0", SpanKind::Segment, (0, 1), "w/0", (0, 10), SpanEnd::Done),
                span("wrap", SpanKind::Wrap, (0, 1), "leader", (10, 12), SpanEnd::Done),
            ],
            elapsed: Duration::from_millis(12),
        };
        assert_eq!(t.critical_path(), [1, 0]);
        assert!(Timeline::default().critical_path().is_empty());
    }
}
