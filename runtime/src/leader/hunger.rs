//! Stealing across workers, decided in one place: whom a hungry worker takes work from.
//!
//! Workers hold up to their prefetch window of tasks; at the end of a job, or when new
//! workers join, some are idle while others sit on tasks they have not started.
//! Broadcasting hunger to every worker made control traffic grow with the square of
//! the pool (a hundred idle workers: ~40,000 deliveries/s). Instead:
//!
//! 1. Every result a worker sends says how many tasks it holds unstarted
//!    ([`TaskResult::held`](crate::task::TaskResult::held)); the leader keeps the
//!    latest figure per worker ([`Holdings::report`]).
//! 2. An idle worker reports hunger to one leader (a shared queue), backing off while
//!    nothing comes of it ([`HungerBackoff`]).
//! 3. That leader picks the holder with the most unstarted tasks and directs a
//!    [`Control::GiveBack`](crate::task::Control::GiveBack) at it alone
//!    ([`Holdings::on_hungry`]), for as many tasks as the hungry worker has idle lanes
//!    at least, and half of what the holder holds if that is more: like a thief in a
//!    work-stealing deque, one exchange evens out the two.
//! 4. The holder hands that many back to the broker, which delivers them to whoever
//!    has room: the hungry worker.
//!
//! Each hunger report costs one delivery and at most one give-back, whatever the
//! size of the pool.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a leader knows of each worker's unstarted tasks.
#[derive(Debug, Default)]
pub struct Holdings {
    workers: HashMap<String, Held>,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    unstarted: u32,
    at: Instant,
}

/// A give-back to direct at one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GiveBack {
    pub from: String,
    pub tasks: u32,
}

impl Holdings {
    /// Reports older than this are not acted on (the worker has moved on since).
    pub const FRESH: Duration = Duration::from_secs(3);
    /// Workers silent for this long are forgotten.
    pub const MEMORY: Duration = Duration::from_secs(60);

    /// `worker` held `unstarted` tasks at `now` (the latest report wins).
    pub fn report(&mut self, worker: &str, unstarted: u32, now: Instant) {
        match self.workers.get_mut(worker) {
            Some(held) => *held = Held { unstarted, at: now },
            None => {
                self.workers.insert(worker.to_owned(), Held { unstarted, at: now });
            }
        }
    }

    /// `hungry` has `idle_lanes` idle: whom to ask for how many tasks (half of what the
    /// holder holds, or `idle_lanes` if more), if anyone holds some. The chosen holder's figure drops by what it is asked for, so the next
    /// hungry worker is sent elsewhere.
    pub fn on_hungry(&mut self, hungry: &str, idle_lanes: u32, now: Instant) -> Option<GiveBack> {
        self.workers.retain(|_, held| now.saturating_duration_since(held.at) <= Self::MEMORY);
        let (from, held) = self
            .workers
            .iter_mut()
            .filter(|(name, held)| {
                name.as_str() != hungry
                    && held.unstarted > 0
                    && now.saturating_duration_since(held.at) <= Self::FRESH
            })
            // The most unstarted tasks; ties by name, so the choice is reproducible.
            .max_by(|(a, x), (b, y)| x.unstarted.cmp(&y.unstarted).then_with(|| b.cmp(a)))?;
        let tasks = held.unstarted.div_ceil(2).max(idle_lanes).min(held.unstarted);
        held.unstarted -= tasks;
        Some(GiveBack { from: from.clone(), tasks })
    }

    /// Workers remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }
}

/// When an idle worker reports hunger: once no delivery came for twice as long as
/// deliveries usually take to come (so a worker in a steady flow of work, waiting a
/// moment for its next task, stays quiet), then less and less often while nothing
/// arrives, so an idle pool costs the broker next to nothing.
#[derive(Debug, Clone)]
pub struct HungerBackoff {
    /// The wait before the first report of an idle spell.
    first: Duration,
    interval: Duration,
    last: Option<Instant>,
    /// Exponentially weighted time between deliveries, and the last delivery.
    usual_gap: Option<Duration>,
    last_fed: Option<Instant>,
}

impl HungerBackoff {
    /// The shortest wait before the first report of an idle spell.
    pub const FIRST: Duration = Duration::from_millis(50);
    /// The longest wait before the first report of an idle spell.
    pub const FIRST_MAX: Duration = Duration::from_secs(1);
    /// The longest wait between two reports.
    pub const MAX: Duration = Duration::from_secs(5);

    pub fn new() -> Self {
        Self { first: Self::FIRST, interval: Self::FIRST, last: None, usual_gap: None, last_fed: None }
    }

    /// Work arrived at `now`: the next idle spell starts with a prompt report again,
    /// "prompt" meaning twice the usual time between deliveries.
    pub fn fed(&mut self, now: Instant) {
        if let Some(prev) = self.last_fed {
            let gap = now.saturating_duration_since(prev);
            self.usual_gap = Some(match self.usual_gap {
                Some(usual) => usual.mul_f64(0.8) + gap.mul_f64(0.2),
                None => gap,
            });
        }
        self.last_fed = Some(now);
        self.first = self.usual_gap.map_or(Self::FIRST, |gap| (gap * 2).clamp(Self::FIRST, Self::FIRST_MAX));
        self.interval = self.first;
        self.last = None;
    }

    /// Whether to report now, for a worker idle since `idle_since`; a `true` counts as
    /// a report made (the next one waits twice as long).
    pub fn due(&mut self, idle_since: Instant, now: Instant) -> bool {
        let since = self.last.map_or(idle_since, |last| last.max(idle_since));
        if now.saturating_duration_since(since) < self.interval {
            return false;
        }
        if self.last.is_some() {
            self.interval = (self.interval * 2).min(Self::MAX);
        }
        self.last = Some(now);
        true
    }
}

impl Default for HungerBackoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_biggest_fresh_holder_gives_back_what_the_hungry_worker_can_run() {
        let t0 = Instant::now();
        let mut h = Holdings::default();
        h.report("a", 2, t0);
        h.report("b", 6, t0);
        h.report("c", 9, t0 - Holdings::FRESH * 2 + Duration::from_secs(1));
        let now = t0 + Duration::from_millis(10);
        // c holds more but its report is stale. Half of b's six.
        assert_eq!(h.on_hungry("z", 1, now), Some(GiveBack { from: "b".into(), tasks: 3 }));
        // b is down to 3, a holds 2: b again, for as many as the four idle lanes, all it has.
        assert_eq!(h.on_hungry("z", 4, now), Some(GiveBack { from: "b".into(), tasks: 3 }));
        assert_eq!(h.on_hungry("y", 1, now), Some(GiveBack { from: "a".into(), tasks: 1 }));
        // Now a and b hold 1 and 0... then nothing.
        assert_eq!(h.on_hungry("y", 1, now), Some(GiveBack { from: "a".into(), tasks: 1 }));
        assert_eq!(h.on_hungry("y", 1, now), None, "nothing fresh left to give");
        // Ties go to the first name.
        h.report("b", 2, now);
        h.report("a", 2, now);
        assert_eq!(h.on_hungry("y", 1, now), Some(GiveBack { from: "a".into(), tasks: 1 }));
        assert_eq!(h.on_hungry("y", 1, now), Some(GiveBack { from: "b".into(), tasks: 1 }));
    }

    #[test]
    fn a_worker_is_never_asked_to_feed_itself_and_a_new_report_replaces_the_old() {
        let t0 = Instant::now();
        let mut h = Holdings::default();
        h.report("a", 5, t0);
        assert_eq!(h.on_hungry("a", 1, t0), None);
        h.report("a", 0, t0);
        assert_eq!(h.on_hungry("b", 1, t0), None);
        h.report("a", 1, t0);
        assert_eq!(h.on_hungry("b", 0, t0), Some(GiveBack { from: "a".into(), tasks: 1 }));
    }

    #[test]
    fn silent_workers_are_forgotten() {
        let t0 = Instant::now();
        let mut h = Holdings::default();
        h.report("a", 3, t0);
        h.report("b", 3, t0 + Holdings::MEMORY);
        assert_eq!(h.len(), 2);
        assert!(h.on_hungry("c", 1, t0 + Holdings::MEMORY + Duration::from_secs(1)).is_some());
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn hunger_reports_back_off_while_nothing_arrives_and_restart_when_fed() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = HungerBackoff::new();
        assert!(!b.due(t0, t0 + ms(40)), "too soon after going idle");
        assert!(b.due(t0, t0 + ms(50)));
        // The second report waits the first interval, then each wait doubles.
        let mut at = t0 + ms(50);
        let mut waits = vec![];
        for _ in 0..8 {
            let mut next = at;
            while !b.due(t0, next) {
                next += ms(10);
            }
            waits.push((next - at).as_millis());
            at = next;
        }
        assert_eq!(waits, [50, 100, 200, 400, 800, 1600, 3200, 5000]);
        b.fed(at);
        let idle_again = at + ms(1);
        assert!(!b.due(idle_again, idle_again + ms(49)));
        assert!(b.due(idle_again, idle_again + ms(50)));
    }

    #[test]
    fn a_worker_in_a_steady_flow_of_work_stays_quiet_between_deliveries() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut b = HungerBackoff::new();
        // A delivery every 100 ms: waiting up to 150 ms for the next one is normal.
        let mut at = t0;
        for i in 0..20 {
            b.fed(at);
            // From the second delivery on, the usual gap is known.
            if i > 0 {
                assert!(!b.due(at, at + ms(150)), "reported within a normal gap");
            }
            at += ms(100);
        }
        // The flow stops: the first report comes at twice the usual gap.
        b.fed(at);
        assert!(!b.due(at, at + ms(190)));
        assert!(b.due(at, at + ms(200)));
        // Slow deliveries never push the first report past a second.
        for _ in 0..20 {
            at += Duration::from_secs(10);
            b.fed(at);
        }
        assert!(b.due(at, at + HungerBackoff::FIRST_MAX));
    }

    #[test]
    fn a_pool_idle_for_a_minute_reports_a_handful_of_times_per_worker() {
        let t0 = Instant::now();
        let mut b = HungerBackoff::new();
        let reports = (0..60_000).step_by(50).filter(|&ms| b.due(t0, t0 + Duration::from_millis(ms))).count();
        assert!((14..=20).contains(&reports), "{reports} reports in a minute");
    }
}
