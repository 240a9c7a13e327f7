//! Sharing the workers among a leader's jobs: how many tasks each job may have out.
//!
//! Jobs do not publish every ready task at once. The leader keeps a **window** of
//! tasks out with the workers (queued in the broker, prefetched or running), a few
//! per lane, and the [`Dispatcher`] decides which job's ready task fills each free
//! slot. A short broker queue is what lets priorities work at all: a task published
//! is out of the leader's hands, and a queue of thousands puts a new job's first
//! aggregation behind all of them. Stealing still has enough to balance.
//!
//! # The policy ([`SharePolicy::Fair`], the default)
//! 1. **Clients by weight.** A free slot goes to the client with the fewest tasks out
//!    per unit of weight, among clients with ready work (weighted fair share).
//! 2. **Oldest job first within a client.** Blocks are proven in chain order: the job
//!    with the lowest `order` (the block number in `batch`, submission order in
//!    `serve`) fills slots first; later jobs fill what it cannot use.
//! 3. **Work-conserving.** A slot is never left empty while any job has a ready task.
//! 4. Within a job, aggregations go before segments (the ledger's ready queue): they
//!    finish the fold, which is what completes a job.
//! 5. **A lone job refills in chunks while the workers hold plenty.** With one job
//!    and more than half the window out, freed slots are granted only once
//!    `window / REFILL_CHUNKS` of them are free ([`Dispatcher::REFILL_CHUNKS`]): small
//!    tasks then go out many to a message instead of one per result (the broker's cost
//!    is per message), and nothing waits on it, as the workers still hold half a
//!    window. Up to half, every free slot is filled at once (rule 3): a lone task never
//!    waits. Jobs sharing the workers get every slot as it frees (rules 1-2 decide
//!    whose it is, and a job woken for a grant must find it still there).
//!
//! [`SharePolicy::Fifo`] (oldest job first, no client shares), [`SharePolicy::RoundRobin`]
//! (equal shares per job) and [`SharePolicy::Unbounded`] (every ready task published at
//! once: plain FIFO publishing) exist for comparison; `docs/BENCHMARKS.md` measures them.
//!
//! # The window
//! `window` (fixed), or automatic: [`Dispatcher::AUTO_PER_LANE`] tasks per lane that
//! reported work in the last [`Dispatcher::LANE_MEMORY`], at least
//! [`Dispatcher::AUTO_MIN_SHARED`] while jobs share the workers and
//! [`Dispatcher::AUTO_MIN_ALONE`] while one job has them to itself (nobody to protect,
//! and a deeper queue hides the leader's reaction time behind tiny tasks). Repairs and
//! re-dispatches of tasks already out do not need a slot.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How free slots are shared among jobs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharePolicy {
    /// Weighted fair share among clients, oldest job first within a client.
    #[default]
    Fair,
    /// Oldest job first, whoever submitted it.
    Fifo,
    /// Every job the same number of tasks out.
    RoundRobin,
    /// No window: every ready task is published at once (for comparison).
    Unbounded,
}

/// How the leader shares its workers among jobs.
#[derive(Clone, Debug, Default)]
pub struct Scheduling {
    pub policy: SharePolicy,
    /// Tasks out at once across all jobs; `None`: automatic from the lanes seen.
    pub window: Option<usize>,
    /// Client weights (default 1 each).
    pub weights: HashMap<String, u32>,
}

/// One job as the dispatcher sees it.
#[derive(Clone, Debug)]
struct Slot {
    client: String,
    order: u64,
    /// Tasks ready to go, not yet granted.
    ready: usize,
    /// Tasks out (including grants the job has taken).
    out: usize,
    /// Granted, not yet taken by the job.
    granted: usize,
}

/// What [`Dispatcher::update`] decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// Tasks the calling job may publish now (out of its ready ones).
    pub grant: usize,
    /// Other jobs that were granted slots and should be told.
    pub wake: Vec<String>,
}

/// The leader-wide share of the window. Pure: callers pass the time.
pub struct Dispatcher {
    scheduling: Scheduling,
    jobs: HashMap<String, Slot>,
    /// Lane (`worker/lane`) -> last time it reported work.
    lanes: HashMap<String, Instant>,
}

impl Dispatcher {
    /// Automatic window: tasks per active lane (one running, more queued behind it).
    pub const AUTO_PER_LANE: usize = 4;
    /// Automatic window with several jobs: never smaller than this.
    pub const AUTO_MIN_SHARED: usize = 16;
    /// Automatic window with one job: never smaller than this.
    pub const AUTO_MIN_ALONE: usize = 256;
    /// How long a lane counts as active after its last report.
    pub const LANE_MEMORY: Duration = Duration::from_secs(30);
    /// Rule 5: past half the window out, a lone job's slots are refilled
    /// `window / REFILL_CHUNKS` at a time.
    pub const REFILL_CHUNKS: usize = 8;

    pub fn new(scheduling: Scheduling) -> Self {
        Self { scheduling, jobs: HashMap::new(), lanes: HashMap::new() }
    }

    /// Jobs sharing the window now.
    pub fn jobs(&self) -> usize {
        self.jobs.len()
    }

    /// Tasks out at once across all jobs now.
    pub fn window(&self) -> usize {
        match self.scheduling.window {
            Some(w) => w.max(1),
            None => {
                let floor = if self.jobs.len() > 1 { Self::AUTO_MIN_SHARED } else { Self::AUTO_MIN_ALONE };
                (self.lanes.len() * Self::AUTO_PER_LANE).max(floor)
            }
        }
    }

    /// `lane` reported work (a heartbeat or a result) at `now`.
    pub fn saw_lane(&mut self, lane: &str, now: Instant) {
        match self.lanes.get_mut(lane) {
            Some(seen) => *seen = now,
            None => {
                self.lanes.insert(lane.to_owned(), now);
            }
        }
    }

    /// Forget lanes silent for longer than [`Self::LANE_MEMORY`].
    pub fn forget_idle_lanes(&mut self, now: Instant) {
        self.lanes.retain(|_, seen| now.saturating_duration_since(*seen) <= Self::LANE_MEMORY);
    }

    /// Add a job (or change its place).
    pub fn join(&mut self, job: &str, client: &str, order: u64) {
        let slot = self.jobs.entry(job.to_owned()).or_insert_with(|| Slot {
            client: String::new(),
            order,
            ready: 0,
            out: 0,
            granted: 0,
        });
        slot.client = client.to_owned();
        slot.order = order;
    }

    /// The job ended: its slots go to the others. Returns the jobs to wake.
    pub fn leave(&mut self, job: &str) -> Vec<String> {
        self.jobs.remove(job);
        self.allocate()
    }

    /// `job` has `ready` tasks waiting and `out` tasks out: take its grant (which the
    /// caller publishes now, from its ready tasks) and see who else gets slots.
    pub fn update(&mut self, job: &str, ready: usize, out: usize) -> Update {
        let Some(slot) = self.jobs.get_mut(job) else { return Update { grant: ready, wake: Vec::new() } };
        slot.ready = ready;
        slot.out = out;
        slot.granted = 0;
        let wake = self.allocate().into_iter().filter(|j| j != job).collect();
        let slot = self.jobs.get_mut(job).expect("present above");
        let grant = std::mem::take(&mut slot.granted);
        slot.ready -= grant;
        slot.out += grant;
        Update { grant, wake }
    }

    /// Fill free slots; returns the jobs whose grant went from zero to some.
    fn allocate(&mut self) -> Vec<String> {
        let mut woken = Vec::new();
        if self.scheduling.policy == SharePolicy::Unbounded {
            for (id, slot) in &mut self.jobs {
                if slot.ready > slot.granted {
                    if slot.granted == 0 {
                        woken.push(id.clone());
                    }
                    slot.granted = slot.ready;
                }
            }
            return woken;
        }
        let used: usize = self.jobs.values().map(|s| s.out + s.granted).sum();
        let window = self.window();
        if self.jobs.len() == 1 && !refill_now(window, used) {
            return woken;
        }
        let mut free = window.saturating_sub(used);
        // Deterministic order: by (order, id).
        let mut ids: Vec<&String> = self.jobs.keys().collect();
        ids.sort_by(|a, b| (self.jobs[*a].order, a).cmp(&(self.jobs[*b].order, b)));
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        while free > 0 {
            let Some(pick) = self.pick(&ids) else { break };
            let slot = self.jobs.get_mut(&pick).expect("picked from the jobs");
            if slot.granted == 0 {
                woken.push(pick.clone());
            }
            // A job alone in wanting slots takes all it can at once (the common case of
            // one job: no per-slot choice to make).
            let alone = ids.iter().filter(|id| **id != pick).all(|id| {
                let other = &self.jobs[id];
                other.ready <= other.granted
            });
            let slot = self.jobs.get_mut(&pick).expect("picked from the jobs");
            let n = if alone { free.min(slot.ready - slot.granted) } else { 1 };
            slot.granted += n;
            free -= n;
        }
        woken
    }

    /// The job that gets the next free slot, by the policy; `ids` sorted oldest first.
    fn pick(&self, ids: &[String]) -> Option<String> {
        let wants = |id: &&String| {
            let s = &self.jobs[*id];
            s.ready > s.granted
        };
        let load = |id: &String| self.jobs[id].out + self.jobs[id].granted;
        match self.scheduling.policy {
            SharePolicy::Fifo | SharePolicy::Unbounded => ids.iter().find(wants).cloned(),
            SharePolicy::RoundRobin => ids.iter().filter(wants).min_by_key(|id| load(id)).cloned(),
            SharePolicy::Fair => {
                // Per client: tasks out, and its oldest job with ready work.
                let mut clients: Vec<(&str, usize, &String)> = Vec::new();
                for id in ids {
                    let client = self.jobs[id].client.as_str();
                    match clients.iter_mut().find(|(c, ..)| *c == client) {
                        Some((_, out, _)) => *out += load(id),
                        None => clients.push((client, load(id), id)),
                    }
                }
                // `first` must be the client's oldest job *with ready work*.
                let oldest_ready = |client: &str| {
                    ids.iter().filter(wants).find(|id| self.jobs[*id].client == client).cloned()
                };
                clients
                    .iter()
                    .filter_map(|(client, out, _)| Some((oldest_ready(client)?, *out, self.weight(client))))
                    // Least out per weight: out_a / w_a < out_b / w_b, compared without division.
                    .min_by(|(ja, oa, wa), (jb, ob, wb)| {
                        (oa * wb).cmp(&(ob * wa)).then_with(|| self.jobs[ja].order.cmp(&self.jobs[jb].order))
                    })
                    .map(|(job, ..)| job)
            }
        }
    }

    fn weight(&self, client: &str) -> usize {
        self.scheduling.weights.get(client).copied().unwrap_or(1).max(1) as usize
    }
}

/// Rule 5: whether slots free in a window with `used` of them taken are granted now.
fn refill_now(window: usize, used: usize) -> bool {
    let free = window.saturating_sub(used);
    used <= window / 2 || free >= (window / Dispatcher::REFILL_CHUNKS).max(1)
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
