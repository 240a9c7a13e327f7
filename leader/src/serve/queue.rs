//! Which queued job starts next, and whether a new one is let in: pure decisions.
//!
//! At most `--max-jobs` jobs run at once; the rest wait in a queue of at most
//! `--max-queued` jobs (a full queue answers 429 with `Retry-After`). When a slot
//! frees up, the next job is chosen:
//!
//! 1. with `--share-policy fair`: from the client with the fewest running jobs per unit
//!    of weight (`--client-weight NAME=W`), so one client's backlog cannot keep
//!    another's blocks waiting for a slot;
//! 2. within that client (and under every other policy, across all clients): the
//!    oldest submission first, so blocks start in the order they were sent (chain order).
//!
//! Once running, jobs share the workers task by task through the leader's dispatcher
//! (the same `--share-policy`); this only decides who gets a slot.

use std::collections::HashMap;

/// A queued job as the chooser sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub client: &'a str,
    /// Submission order (lower first).
    pub order: u64,
}

/// The index in `queued` of the job to start next, or `None` when `queued` is empty.
/// `running` counts running jobs per client; `weights` are the `--client-weight`s
/// (default 1); `fair` selects step 1 of the module doc.
pub fn next_to_start(
    queued: &[Candidate<'_>],
    running: &HashMap<String, usize>,
    weights: &HashMap<String, u32>,
    fair: bool,
) -> Option<usize> {
    let oldest = |i: &usize| queued[*i].order;
    if !fair {
        return (0..queued.len()).min_by_key(oldest);
    }
    // Load of a client: running jobs / weight, compared exactly as r1 * w2 vs r2 * w1.
    let load = |client: &str| {
        let r = running.get(client).copied().unwrap_or(0) as u128;
        let w = u128::from(weights.get(client).copied().unwrap_or(1).max(1));
        (r, w)
    };
    (0..queued.len()).min_by(|a, b| {
        let ((ra, wa), (rb, wb)) = (load(queued[*a].client), load(queued[*b].client));
        (ra * wb).cmp(&(rb * wa)).then(oldest(a).cmp(&oldest(b)))
    })
}

/// Whether one more job may be queued.
pub fn admit(queued: usize, max_queued: usize) -> bool {
    queued < max_queued
}

/// Seconds a client told "queue full" should wait: about as long as a running job
/// takes to finish on average (from recent jobs), between 1 s and 10 min; 30 s when
/// nothing finished yet.
pub fn retry_after_secs(mean_job_secs: Option<f64>) -> u64 {
    match mean_job_secs {
        Some(s) if s.is_finite() && s > 0.0 => (s.ceil() as u64).clamp(1, 600),
        _ => 30,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(client: &str, order: u64) -> Candidate<'_> {
        Candidate { client, order }
    }

    fn counts(pairs: &[(&str, usize)]) -> HashMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn oldest_first_without_fair_share() {
        let q = [c("a", 30), c("b", 10), c("a", 20)];
        assert_eq!(next_to_start(&q, &counts(&[("b", 5)]), &HashMap::new(), false), Some(1));
        assert_eq!(next_to_start(&[], &HashMap::new(), &HashMap::new(), false), None);
    }

    #[test]
    fn fair_share_gives_the_slot_to_the_least_served_client_then_its_oldest_job() {
        // a has 2 running, b none: b's oldest job starts although a's are older.
        let q = [c("a", 1), c("a", 2), c("b", 9), c("b", 7)];
        assert_eq!(next_to_start(&q, &counts(&[("a", 2)]), &HashMap::new(), true), Some(3));
        // Equal loads: the oldest job overall.
        assert_eq!(next_to_start(&q, &counts(&[("a", 1), ("b", 1)]), &HashMap::new(), true), Some(0));
    }

    #[test]
    fn weights_scale_what_a_client_may_run() {
        // a (weight 3) runs 2, b (weight 1) runs 1: a's load 2/3 < b's 1/1, so a goes.
        let q = [c("b", 1), c("a", 2)];
        let weights: HashMap<String, u32> = [("a".to_string(), 3)].into();
        assert_eq!(next_to_start(&q, &counts(&[("a", 2), ("b", 1)]), &weights, true), Some(1));
        // With a at 3 running (load 1 = b's), age decides: b's job is older.
        assert_eq!(next_to_start(&q, &counts(&[("a", 3), ("b", 1)]), &weights, true), Some(0));
    }

    #[test]
    fn the_queue_is_bounded() {
        assert!(admit(0, 1));
        assert!(!admit(1, 1));
        assert!(!admit(5, 0));
    }

    #[test]
    fn retry_after_follows_recent_jobs_within_bounds() {
        assert_eq!(retry_after_secs(None), 30);
        assert_eq!(retry_after_secs(Some(0.2)), 1);
        assert_eq!(retry_after_secs(Some(12.3)), 13);
        assert_eq!(retry_after_secs(Some(1e9)), 600);
        assert_eq!(retry_after_secs(Some(f64::NAN)), 30);
    }
}
