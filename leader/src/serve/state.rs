//! A service job's life as pure decisions: its states and what moves it between them,
//! what a restart does with each recorded job, and when retention deletes one.
//!
//! ```text
//!   queued ──start──▶ running ──proven──▶ proven
//!     │                 │ └────failed───▶ failed
//!     └────cancel───────┴────cancel─────▶ cancelled
//!                       └─interrupted─▶ queued   (the service stopped; on restart)
//! ```
//!
//! The final states (`proven`, `failed`, `cancelled`) never change again: an outcome
//! that arrives after a cancel (the job finished while its cancel travelled) is
//! dropped, so a job the user cancelled never turns up proven.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where a job stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Proven,
    Failed,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [Self::Queued, Self::Running, Self::Proven, Self::Failed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Proven => "proven",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether the job is over (its record never changes again).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Proven | Self::Failed | Self::Cancelled)
    }
}

/// What happens to a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The scheduler gives it workers.
    Start,
    /// Its proof is durable in the store.
    Proven,
    /// The plugin or the runtime gave up on it.
    Failed,
    /// `DELETE` while it was queued or running.
    Cancel,
    /// The service stopped while it ran (it resumes when the service starts again).
    Interrupted,
}

/// The state after `event`, or `None` when the event does not apply (the caller keeps
/// the job as it is: e.g. an outcome that arrives after a cancel).
pub fn next(state: JobState, event: Event) -> Option<JobState> {
    use {Event as E, JobState as S};
    match (state, event) {
        (S::Queued, E::Start) => Some(S::Running),
        (S::Running, E::Proven) => Some(S::Proven),
        (S::Running, E::Failed) => Some(S::Failed),
        (S::Queued | S::Running, E::Cancel) => Some(S::Cancelled),
        (S::Running, E::Interrupted) => Some(S::Queued),
        // A job that failed to even start (its stored input unreadable) fails from queued.
        (S::Queued, E::Failed) => Some(S::Failed),
        _ => None,
    }
}

/// What a starting service does with a job it finds recorded in the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restore {
    /// Queue it again (it was queued, or running when the service stopped).
    Requeue,
    /// Serve its record (and proof) as they are.
    Keep,
    /// Keep the record, and delete what the leader left of the job (a proven or
    /// cancelled job whose artifacts were not yet deleted when the service stopped).
    KeepAndClean,
}

pub fn restore(state: JobState) -> Restore {
    match state {
        JobState::Queued | JobState::Running => Restore::Requeue,
        // A failed job's artifacts stay for `stdio --resume JOB` until retention.
        JobState::Failed => Restore::Keep,
        JobState::Proven | JobState::Cancelled => Restore::KeepAndClean,
    }
}

/// How a job gets its tasks when it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartMode {
    /// The leader wrote the job's manifest before the service stopped: resume from its
    /// journal, so finished segments are not proven again.
    Resume,
    /// Plan the stored input and submit it (a new job, or one that had not published
    /// anything yet).
    Submit,
}

pub fn start_mode(has_manifest: bool) -> StartMode {
    if has_manifest { StartMode::Resume } else { StartMode::Submit }
}

/// Whether retention deletes a job now: only finished jobs, `retention` after they
/// finished; a zero retention keeps everything.
pub fn expired(state: JobState, finished_ms: Option<u64>, now_ms: u64, retention: Duration) -> bool {
    if retention.is_zero() || !state.is_final() {
        return false;
    }
    let Some(finished) = finished_ms else { return false };
    now_ms.saturating_sub(finished) >= u64::try_from(retention.as_millis()).unwrap_or(u64::MAX)
}

/// How often the retention sweep runs: a quarter of the retention, between 1 s and 5 min.
pub fn sweep_interval(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event as E;
    use JobState as S;

    #[test]
    fn the_happy_path_and_failure() {
        assert_eq!(next(S::Queued, E::Start), Some(S::Running));
        assert_eq!(next(S::Running, E::Proven), Some(S::Proven));
        assert_eq!(next(S::Running, E::Failed), Some(S::Failed));
        assert_eq!(next(S::Queued, E::Failed), Some(S::Failed));
    }

    #[test]
    fn cancel_applies_only_to_unfinished_jobs_and_wins_over_a_late_outcome() {
        assert_eq!(next(S::Queued, E::Cancel), Some(S::Cancelled));
        assert_eq!(next(S::Running, E::Cancel), Some(S::Cancelled));
        for late in [E::Proven, E::Failed, E::Start, E::Interrupted] {
            assert_eq!(next(S::Cancelled, late), None, "{late:?}");
        }
    }

    #[test]
    fn final_states_never_change() {
        for state in JobState::ALL.into_iter().filter(|s| s.is_final()) {
            for event in [E::Start, E::Proven, E::Failed, E::Cancel, E::Interrupted] {
                assert_eq!(next(state, event), None, "{state:?} {event:?}");
            }
        }
        // Nothing proves or starts twice.
        assert_eq!(next(S::Running, E::Start), None);
        assert_eq!(next(S::Queued, E::Proven), None);
    }

    #[test]
    fn restart_requeues_unfinished_jobs_and_serves_finished_ones() {
        assert_eq!(restore(S::Queued), Restore::Requeue);
        assert_eq!(restore(S::Running), Restore::Requeue);
        assert_eq!(restore(S::Proven), Restore::KeepAndClean);
        assert_eq!(restore(S::Failed), Restore::Keep);
        assert_eq!(restore(S::Cancelled), Restore::KeepAndClean);
        assert_eq!(next(S::Running, E::Interrupted), Some(S::Queued));
        assert_eq!(start_mode(true), StartMode::Resume);
        assert_eq!(start_mode(false), StartMode::Submit);
    }

    #[test]
    fn states_round_trip_through_their_names() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert_eq!(JobState::parse("done"), None);
    }

    #[test]
    fn retention_deletes_finished_jobs_only_after_their_time() {
        let day = Duration::from_secs(86_400);
        let t = 1_000_000_000_000;
        assert!(!expired(S::Proven, Some(t), t + 86_399_999, day));
        assert!(expired(S::Proven, Some(t), t + 86_400_000, day));
        assert!(expired(S::Failed, Some(t), t + 90_000_000, day));
        assert!(expired(S::Cancelled, Some(t), t + 90_000_000, day));
        // Unfinished jobs are never expired, whatever their age; zero keeps everything.
        assert!(!expired(S::Running, Some(t), u64::MAX, day));
        assert!(!expired(S::Queued, None, u64::MAX, day));
        assert!(!expired(S::Proven, Some(t), u64::MAX, Duration::ZERO));
        // A clock that went backwards expires nothing.
        assert!(!expired(S::Proven, Some(t), t - 5, Duration::from_secs(1)));
    }

    #[test]
    fn sweeps_run_often_enough_and_not_too_often() {
        assert_eq!(sweep_interval(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(sweep_interval(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(sweep_interval(Duration::from_secs(7 * 86_400)), Duration::from_secs(300));
    }
}
