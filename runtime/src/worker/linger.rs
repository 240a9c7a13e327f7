//! When a worker sends the results its lanes finished: at once, or a moment later
//! with more of them in the same message.
//!
//! Where each message costs the broker the same whatever it carries (AMQP: an append,
//! a delivery, an ack; `Transport::result_linger`), 1 ms tasks answered one message
//! each spend more of a small machine on the broker than on the tasks. Results wait
//! only while that costs nothing:
//!
//! 1. **Nothing else to run: send now.** A worker with no task running or queued sends
//!    at once, so a lone task, and the last ones of a fold, never wait.
//! 2. **Enough for a message: send now** ([`ENOUGH_RESULTS`]).
//! 3. **Otherwise hold**, until the first result held has waited `linger`. The leader
//!    still holds half a window of tasks out meanwhile (its refill rule), so no lane
//!    starves while results wait.

use std::time::Duration;

/// Results that make a message worth sending without waiting (rule 2).
pub const ENOUGH_RESULTS: usize = 32;

/// Whether `waiting` results, the first of them finished `waited` ago, go out now
/// (`None`) or how much longer they are held. `busy`: the worker has a task running or
/// queued.
pub fn hold_results(waiting: usize, waited: Duration, busy: bool, linger: Duration) -> Option<Duration> {
    if waiting == 0 || !busy || waiting >= ENOUGH_RESULTS || waited >= linger {
        return None;
    }
    Some(linger - waited)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(4);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_worker_with_nothing_else_to_run_sends_at_once() {
        assert_eq!(hold_results(1, Duration::ZERO, false, LINGER), None);
        assert_eq!(hold_results(3, MS, false, LINGER), None);
    }

    #[test]
    fn a_busy_worker_holds_results_until_the_first_waited_the_linger_or_a_message_is_full() {
        assert_eq!(hold_results(1, Duration::ZERO, true, LINGER), Some(LINGER));
        assert_eq!(hold_results(3, MS, true, LINGER), Some(3 * MS));
        assert_eq!(hold_results(3, LINGER, true, LINGER), None);
        assert_eq!(hold_results(3, 10 * MS, true, LINGER), None);
        assert_eq!(hold_results(ENOUGH_RESULTS, Duration::ZERO, true, LINGER), None);
    }

    #[test]
    fn without_a_linger_nothing_is_held() {
        for waiting in 0..40 {
            assert_eq!(hold_results(waiting, Duration::ZERO, true, Duration::ZERO), None);
        }
        assert_eq!(hold_results(0, Duration::ZERO, true, LINGER), None, "nothing to send, nothing to hold");
    }
}
