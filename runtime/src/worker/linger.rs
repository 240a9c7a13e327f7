//! When a worker sends the results its lanes finished: at once, or a moment later
//! with more of them in the same message.
//!
//! Where each message costs the broker the same whatever it carries (AMQP: an append,
//! a delivery, an ack; in memory: the wake-ups of the actor, the leader and a lane;
//! `Transport::result_linger`), 1 ms tasks answered one message each spend more of a
//! small machine on handing results over than on the tasks. But a held
//! result also holds its delivery unacked, and so a share of the worker's prefetch:
//! results wait only while the lanes have plenty queued without new deliveries.
//!
//! 1. **Little left to run: send now.** Fewer than [`LOW_WATER_PER_LANE`] unstarted
//!    tasks per lane: the lanes are about to need what the broker delivers once the
//!    results are sent and their messages acked. A lone task, the last ones of a fold,
//!    and tasks that travel one per message with a small prefetch never wait.
//! 2. **Enough for a message: send now** ([`ENOUGH_RESULTS`]).
//! 3. **Otherwise hold**, until the first result held has waited `linger`.
//!
//! Lanes tell the actor when a result is the first one waiting, and whenever they
//! leave fewer than the low-water mark queued (rule 1 is then due).

use std::time::Duration;

/// Results that make a message worth sending without waiting (rule 2).
pub const ENOUGH_RESULTS: usize = 32;

/// Unstarted tasks per lane below which results are sent at once (rule 1).
pub const LOW_WATER_PER_LANE: usize = 2;

/// Whether a worker's results are sent now (`None`) or held a while longer: `waiting`
/// results, the first finished `waited` ago, with `queued` unstarted tasks on `lanes`.
pub fn hold_results(
    waiting: usize,
    waited: Duration,
    queued: usize,
    lanes: usize,
    linger: Duration,
) -> Option<Duration> {
    let low = queued < LOW_WATER_PER_LANE * lanes;
    if waiting == 0 || low || waiting >= ENOUGH_RESULTS || waited >= linger {
        return None;
    }
    Some(linger - waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(4);
    const MS: Duration = Duration::from_millis(1);
    /// Plenty queued on 2 lanes.
    const FED: usize = 2 * LOW_WATER_PER_LANE;

    #[test]
    fn a_worker_with_little_left_to_run_sends_at_once() {
        assert_eq!(hold_results(1, Duration::ZERO, 0, 2, LINGER), None, "nothing queued");
        assert_eq!(hold_results(3, MS, 2 * LOW_WATER_PER_LANE - 1, 2, LINGER), None, "below the mark");
        assert_eq!(hold_results(3, MS, 2 * LOW_WATER_PER_LANE, 2, LINGER), Some(3 * MS), "at the mark");
    }

    #[test]
    fn a_well_fed_worker_holds_results_until_the_first_waited_the_linger_or_a_message_is_full() {
        assert_eq!(hold_results(1, Duration::ZERO, FED, 2, LINGER), Some(LINGER));
        assert_eq!(hold_results(3, MS, FED, 2, LINGER), Some(3 * MS));
        assert_eq!(hold_results(3, LINGER, FED, 2, LINGER), None);
        assert_eq!(hold_results(3, 10 * MS, FED, 2, LINGER), None);
        assert_eq!(hold_results(ENOUGH_RESULTS, Duration::ZERO, 1000, 2, LINGER), None);
    }

    #[test]
    fn without_a_linger_nothing_is_held() {
        for waiting in 0..40 {
            assert_eq!(hold_results(waiting, Duration::ZERO, 1000, 1, Duration::ZERO), None);
        }
        assert_eq!(
            hold_results(0, Duration::ZERO, 1000, 1, LINGER),
            None,
            "nothing to send, nothing to hold"
        );
    }
}
