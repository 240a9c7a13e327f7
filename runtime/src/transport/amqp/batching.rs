//! How tasks and results are packed into AMQP messages.
//!
//! Every message costs the broker about the same (a quorum-queue append, a delivery,
//! an ack), whatever it carries, so small tasks travel many to a message. Two rules
//! keep batching from hurting the schedule:
//!
//! 1. **Only small tasks.** A message carries about [`WORK_PER_MESSAGE`] of work, judged
//!    by the run times workers reported for the same job and kind of task
//!    ([`ExecTimes`]): no-op tasks go 64 to a message, 1 ms tasks 16, anything of 16 ms
//!    or more alone, and so does every task of a job nothing has been measured of yet.
//! 2. **Spread before packing.** A publish of `n` tasks makes at least one message per
//!    consumer of the task queue (up to `n`), so every idle worker can start at once;
//!    only then are tasks packed.
//! 3. **Never hold up a lone task.** Task batches are whatever is published together
//!    (a lone job refills its window a chunk at a time while the workers hold plenty:
//!    `leader::scheduler`, rule 5). A worker with plenty queued holds its results up
//!    to [`RESULT_LINGER`] for more to share their message; one with little left to
//!    run sends at once (`worker::linger`). A lone task goes out alone, at once.
//!
//! A multi-task message is settled as a whole once each of its tasks is (see
//! `batch_ack.rs`).

use std::collections::HashMap;
use std::time::Duration;

use crate::task::TaskKind;

/// The most tasks one message carries.
pub const MAX_TASKS_PER_MESSAGE: usize = 64;
/// The most results one message carries.
pub const MAX_RESULTS_PER_MESSAGE: usize = 256;

/// Work one message should carry: large enough that the broker's cost per message is
/// small beside it, small enough that a batch does not hold up the end of a job. (A
/// quorum-queue message costs a 2-core machine's broker ~0.5-0.8 ms of CPU; at 8 ms,
/// 1 ms tasks left the broker a third of a core per lane: `docs/BENCHMARKS.md` §4.)
pub const WORK_PER_MESSAGE: Duration = Duration::from_millis(16);

/// How long a busy worker's results may wait for more to share their message: half a
/// task message's work, far less than the leader's window keeps queued meanwhile.
pub const RESULT_LINGER: Duration = Duration::from_millis(8);

/// Jobs whose run times are remembered; beyond it, the ones not heard of longest go.
const REMEMBERED_JOBS: usize = 256;

/// Tasks one message carries when such tasks ran `mean` on average (`None`: unknown).
pub fn tasks_per_message(mean: Option<Duration>) -> usize {
    let Some(mean) = mean else { return 1 };
    let per = WORK_PER_MESSAGE.as_nanos() / mean.as_nanos().max(1);
    usize::try_from(per).unwrap_or(usize::MAX).clamp(1, MAX_TASKS_PER_MESSAGE)
}

/// Mean run times (exponentially weighted) by job and kind of task, from results.
#[derive(Debug, Default)]
pub struct ExecTimes {
    /// Keyed by job alone, so that the lookup for every result borrows its `&str`.
    by_job: HashMap<String, JobTimes>,
    /// Results seen: the clock for forgetting jobs.
    seen: u64,
}

#[derive(Debug, Default)]
struct JobTimes {
    /// Mean microseconds of segments, then of aggregations.
    micros: [Option<f64>; 2],
    /// When a result of the job was last seen.
    at: u64,
}

fn kind_index(kind: TaskKind) -> usize {
    match kind {
        TaskKind::Segment => 0,
        TaskKind::Aggregate => 1,
    }
}

impl ExecTimes {
    /// A finished attempt of `task` of `job` ran `micros`.
    pub fn record(&mut self, job: &str, task: &str, micros: u64) {
        let kind = if task.starts_with("agg-") { TaskKind::Aggregate } else { TaskKind::Segment };
        self.seen += 1;
        if !self.by_job.contains_key(job) && self.by_job.len() >= REMEMBERED_JOBS {
            let oldest = self.by_job.iter().min_by_key(|(_, t)| t.at).map(|(k, _)| k.clone());
            oldest.map(|k| self.by_job.remove(&k));
        }
        let times = match self.by_job.get_mut(job) {
            Some(times) => times,
            None => self.by_job.entry(job.to_owned()).or_default(),
        };
        times.at = self.seen;
        let micros = micros as f64;
        let mean = &mut times.micros[kind_index(kind)];
        *mean = Some(mean.map_or(micros, |m| m + 0.2 * (micros - m)));
    }

    /// The mean run time of `kind` tasks of `job`, if any ran.
    pub fn mean(&self, job: &str, kind: TaskKind) -> Option<Duration> {
        let micros = self.by_job.get(job)?.micros[kind_index(kind)]?;
        Some(Duration::from_nanos((micros * 1e3) as u64))
    }
}

/// Sizes of the messages `n` tasks are published in, for a queue with `consumers`
/// consumers: at least `min(n, consumers)` messages, at most `max` tasks each, as
/// even as possible (largest first), never an empty one.
pub fn message_sizes(n: usize, consumers: usize, max: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    let messages = n.div_ceil(max.max(1)).max(consumers.clamp(1, n));
    let (base, extra) = (n / messages, n % messages);
    (0..messages).map(|i| base + usize::from(i < extra)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_consumer_first_then_packed() {
        assert_eq!(message_sizes(0, 4, 64), Vec::<usize>::new());
        assert_eq!(message_sizes(1, 100, 64), [1]);
        // Fewer tasks than consumers: one each.
        assert_eq!(message_sizes(3, 100, 64), [1, 1, 1]);
        // Spread over the consumers, as evenly as possible.
        assert_eq!(message_sizes(10, 4, 64), [3, 3, 2, 2]);
        // More than the consumers can take in one message each: packed to the max.
        assert_eq!(message_sizes(200, 2, 64), [50, 50, 50, 50]);
        // No consumer known yet: packed, but a lone task still goes at once.
        assert_eq!(message_sizes(5, 0, 64), [5]);
        assert_eq!(message_sizes(7, 1, 1), [1; 7]);
    }

    #[test]
    fn only_small_tasks_are_packed() {
        let us = Duration::from_micros;
        assert_eq!(tasks_per_message(None), 1, "nothing measured yet: one per message");
        assert_eq!(tasks_per_message(Some(us(0))), MAX_TASKS_PER_MESSAGE);
        assert_eq!(tasks_per_message(Some(us(5))), MAX_TASKS_PER_MESSAGE);
        assert_eq!(tasks_per_message(Some(us(1000))), 16);
        assert_eq!(tasks_per_message(Some(us(3000))), 5);
        assert_eq!(tasks_per_message(Some(us(8000))), 2);
        assert_eq!(tasks_per_message(Some(us(16000))), 1);
        assert_eq!(tasks_per_message(Some(Duration::from_secs(100))), 1);
    }

    #[test]
    fn run_times_are_kept_per_job_and_kind_and_follow_recent_results() {
        let mut times = ExecTimes::default();
        assert_eq!(times.mean("j", TaskKind::Segment), None);
        times.record("j", "seg-1", 1000);
        times.record("j", "agg-0-1", 10);
        assert_eq!(times.mean("j", TaskKind::Segment), Some(Duration::from_micros(1000)));
        assert_eq!(times.mean("j", TaskKind::Aggregate), Some(Duration::from_micros(10)));
        assert_eq!(times.mean("k", TaskKind::Segment), None);
        for _ in 0..40 {
            times.record("j", "seg-2", 100_000);
        }
        let mean = times.mean("j", TaskKind::Segment).unwrap();
        assert!(mean > Duration::from_micros(99_000), "{mean:?}");
        // Bounded memory: the jobs heard of longest ago are forgotten.
        for job in 0..REMEMBERED_JOBS + 10 {
            times.record(&format!("x{job}"), "seg-0", 1);
        }
        assert!(times.by_job.len() <= REMEMBERED_JOBS);
        assert_eq!(times.mean("j", TaskKind::Segment), None);
        assert!(times.mean(&format!("x{}", REMEMBERED_JOBS + 9), TaskKind::Segment).is_some());
    }

    #[test]
    fn every_task_is_in_exactly_one_message_within_the_bounds() {
        for n in 0..300 {
            for consumers in [0, 1, 2, 7, 100] {
                for max in [1, 3, 64] {
                    let sizes = message_sizes(n, consumers, max);
                    assert_eq!(sizes.iter().sum::<usize>(), n);
                    assert!(
                        sizes.iter().all(|&s| (1..=max).contains(&s)),
                        "{n} {consumers} {max}: {sizes:?}"
                    );
                    assert!(sizes.len() >= n.min(consumers), "{n} {consumers} {max}: {sizes:?}");
                    let spread = sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0);
                    assert!(spread <= 1, "{sizes:?}");
                }
            }
        }
    }
}
