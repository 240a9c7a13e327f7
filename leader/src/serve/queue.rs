//! Which queued job starts next, and whether a new one is let in: pure decisions.
//!
//! At most `--max-jobs` jobs run at once; the rest wait in a queue of at most
//! `--max-queued` jobs (a full queue answers 429 with `Retry-After`). When a slot
//! frees up, the next job is chosen:
//!
//! - with `--share-policy fair`: by start-time fair queueing over clients, one job
//!   being one unit of service (steps below);
//! - otherwise: the oldest submission first (chain order).
//!
//! Fair queueing: a job gets a tag when it is queued, and
//!
//! 1. its start tag is the later of the queue's virtual time and the finish tag of its
//!    client's previous job ([`tag`]);
//! 2. its client's finish tag becomes start + 1 / weight (`--client-weight NAME=W`);
//! 3. the job with the lowest start tag starts next (the oldest on a tie), and the
//!    virtual time moves to its tag.
//!
//! So a client with a backlog cannot keep another's blocks waiting for a slot (they
//! alternate, a client of weight 3 getting three slots to one), and a client that was
//! idle gets no burst of saved-up credit (its tags start at the virtual time).
//!
//! Once running, jobs share the workers task by task through the leader's dispatcher
//! (the same `--share-policy`); this only decides who gets a slot.

/// A queued job as the chooser sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    /// Start tag (fair queueing).
    pub tag: f64,
    /// Submission order (lower first).
    pub order: u64,
}

/// Steps 1 and 2: the start tag of a job queued now and its client's new finish tag.
pub fn tag(virtual_time: f64, client_finish: Option<f64>, weight: u32) -> (f64, f64) {
    let start = client_finish.map_or(virtual_time, |f| f.max(virtual_time));
    (start, start + 1.0 / f64::from(weight.max(1)))
}

/// Step 3: the index in `queued` of the job to start next (`None` when empty).
pub fn next_to_start(queued: &[Candidate], fair: bool) -> Option<usize> {
    (0..queued.len()).min_by(|&a, &b| {
        let (a, b) = (&queued[a], &queued[b]);
        let by_tag = if fair { a.tag.total_cmp(&b.tag) } else { std::cmp::Ordering::Equal };
        by_tag.then(a.order.cmp(&b.order))
    })
}

/// Whether one more job may be queued.
pub fn admit(queued: usize, max_queued: usize) -> bool {
    queued < max_queued
}

/// Seconds a client told "queue full" should wait: about as long as a slot takes to
/// free (from recent jobs), between 1 s and 10 min; 30 s when nothing finished yet.
pub fn retry_after_secs(mean_job_secs: Option<f64>) -> u64 {
    match mean_job_secs {
        Some(s) if s.is_finite() && s > 0.0 => (s.ceil() as u64).clamp(1, 600),
        _ => 30,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Queue `jobs` (client, weight) in order (all at virtual time 0), then start them
    /// all one at a time: the clients in the order they get slots.
    fn simulate(jobs: &[(&'static str, u32)]) -> Vec<&'static str> {
        let (v, mut finish) = (0.0, HashMap::<&str, f64>::new());
        let mut queued: Vec<(Candidate, &str)> = Vec::new();
        for (order, (client, weight)) in jobs.iter().enumerate() {
            let (start, end) = tag(v, finish.get(client).copied(), *weight);
            finish.insert(client, end);
            queued.push((Candidate { tag: start, order: order as u64 }, client));
        }
        let mut started = Vec::new();
        while !queued.is_empty() {
            let candidates: Vec<Candidate> = queued.iter().map(|(c, _)| *c).collect();
            let pick = next_to_start(&candidates, true).unwrap();
            started.push(queued.remove(pick).1);
        }
        started
    }

    #[test]
    fn a_backlog_does_not_keep_another_client_waiting() {
        // a queued three jobs before b's one: b's goes second, not last.
        assert_eq!(simulate(&[("a", 1), ("a", 1), ("a", 1), ("b", 1)]), ["a", "b", "a", "a"]);
        // Two backlogs alternate.
        assert_eq!(simulate(&[("a", 1), ("a", 1), ("a", 1), ("b", 1), ("b", 1)]), ["a", "b", "a", "b", "a"]);
    }

    #[test]
    fn weights_scale_the_slots_a_client_gets() {
        let order = simulate(&[("a", 3), ("a", 3), ("a", 3), ("a", 3), ("b", 1), ("b", 1)]);
        assert_eq!(order, ["a", "b", "a", "a", "a", "b"]);
    }

    #[test]
    fn an_idle_client_gets_no_saved_up_credit() {
        // The virtual time has moved to 5 while c was away: its next job is tagged 5,
        // not 0, so it does not jump ahead of everything queued since.
        assert_eq!(tag(5.0, Some(1.0), 1), (5.0, 6.0));
        assert_eq!(tag(5.0, None, 2), (5.0, 5.5));
        assert_eq!(tag(2.0, Some(7.0), 1), (7.0, 8.0));
    }

    #[test]
    fn without_fair_share_the_oldest_job_goes_first() {
        let q = [Candidate { tag: 0.0, order: 30 }, Candidate { tag: 9.0, order: 10 }];
        assert_eq!(next_to_start(&q, false), Some(1));
        assert_eq!(next_to_start(&q, true), Some(0));
        assert_eq!(next_to_start(&[], true), None);
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
