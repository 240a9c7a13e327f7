//! The control loop: the effects around the pure [`Policy`].
//!
//! # One round (every `--interval-secs`)
//! 1. Scrape every leader's `/metrics`: outstanding cost is their sum. A leader that
//!    cannot be read makes this round *unsure*: pools may grow, never shrink.
//! 2. Observe every pool (backend) and scrape each running worker's `/metrics`:
//!    its load (starting, idle, busy, unknown).
//! 3. Decide with the policy.
//! 4. Lowering: keep enough replicas that only workers holding nothing go
//!    ([`victims::safe_target`]), and pass each worker's deletion cost to the backend.
//! 5. Act (or, with `--dry-run`, log what would be done), and record the round in the
//!    metrics.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::backend::{Backend, PoolView, Worker};
use crate::metrics::Meters;
use crate::policy::{Decision, Policy};
use crate::scrape::{self, Target};
use crate::signal;
use crate::victims::{self, Load};

/// An error and its sources, `: `-separated.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text = format!("{text}: {e}");
        source = e.source();
    }
    text
}

/// How long one scrape may take.
const SCRAPE_DEADLINE: Duration = Duration::from_secs(3);

pub struct Controller<B> {
    policy: Policy,
    backend: B,
    leaders: Vec<Target>,
    dry_run: bool,
    clock: Instant,
    meters: Arc<Mutex<Meters>>,
}

/// What one round did for one pool (returned for tests and logs).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolRound {
    pub pool: String,
    pub decision: Decision,
    /// Replicas actually asked for (after sparing busy workers).
    pub applied: u32,
    pub loads: Vec<Load>,
}

/// Step 2 for one worker: its load, and whether reading it failed.
async fn load(worker: Worker) -> (Load, bool) {
    let Some(target) = &worker.metrics else {
        return (if worker.starting { Load::Starting } else { Load::Unknown }, false);
    };
    let read = scrape::get(target, SCRAPE_DEADLINE).await.map_err(|e| e.to_string());
    match read.and_then(|text| signal::tasks_held(&text).map_err(|e| e.to_string())) {
        Ok(held) => (Load::from_held(held), false),
        Err(_) if worker.starting => (Load::Starting, false),
        Err(error) => {
            tracing::debug!(worker = %worker.name, %error, "cannot read a worker's load; it counts as busy");
            (Load::Unknown, true)
        }
    }
}

impl<B: Backend> Controller<B> {
    pub fn new(
        policy: Policy,
        backend: B,
        leaders: Vec<Target>,
        dry_run: bool,
        meters: Arc<Mutex<Meters>>,
    ) -> Self {
        Self { policy, backend, leaders, dry_run, clock: Instant::now(), meters }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Step 1: the summed outstanding cost, and whether every leader answered.
    async fn outstanding(&self) -> (f64, bool) {
        let mut total = 0.0;
        let mut sure = true;
        for leader in &self.leaders {
            let read = scrape::get(leader, SCRAPE_DEADLINE).await.map_err(|e| e.to_string());
            match read.and_then(|text| signal::outstanding_cost(&text).map_err(|e| e.to_string())) {
                Ok(cost) => total += cost,
                Err(error) => {
                    sure = false;
                    self.meters.lock().expect("meters").scrape_error("leader");
                    tracing::warn!(leader = leader.url(), %error, "cannot read a leader's outstanding work; no pool shrinks this round");
                }
            }
        }
        (total, sure)
    }

    /// Step 2 for a pool: every worker read at once (a round waits for the slowest
    /// scrape, not for their sum), loads in the order of `workers`.
    async fn loads(&self, workers: &[Worker]) -> Vec<Load> {
        let mut reads = tokio::task::JoinSet::new();
        for (i, worker) in workers.iter().enumerate() {
            let worker = worker.clone();
            reads.spawn(async move { (i, load(worker).await) });
        }
        let mut loads = vec![Load::Unknown; workers.len()];
        while let Some(read) = reads.join_next().await {
            // A scrape task that panicked leaves its worker `Unknown`: counted as busy.
            let Ok((i, (l, failed))) = read else { continue };
            loads[i] = l;
            if failed {
                self.meters.lock().expect("meters").scrape_error("worker");
            }
        }
        loads
    }

    /// One round (steps 1-5).
    pub async fn round(&mut self) -> Vec<PoolRound> {
        let (cost, sure) = self.outstanding().await;
        let pools = self.policy.pools().to_vec();
        let mut views: Vec<Option<PoolView>> = Vec::with_capacity(pools.len());
        for pool in &pools {
            match self.backend.observe(pool).await {
                Ok(view) => views.push(Some(view)),
                Err(error) => {
                    self.meters.lock().expect("meters").backend_error(&pool.name);
                    tracing::warn!(pool = %pool.name, error = %chain(&error), "cannot observe a pool; leaving it as it is");
                    views.push(None);
                }
            }
        }
        let nows: Vec<_> = views.iter().map(|v| v.as_ref().map(|v| v.now).unwrap_or_default()).collect();
        let decisions = self.policy.decide(self.clock.elapsed(), cost, &nows);
        let mut rounds = Vec::new();
        for ((pool, view), decision) in pools.iter().zip(&views).zip(decisions) {
            let Some(view) = view else { continue };
            let loads = self.loads(&view.workers).await;
            let wanted = if sure { decision.to } else { decision.to.max(decision.from) };
            let applied = victims::safe_target(decision.from, wanted, &loads);
            let costs: Vec<i32> = loads.iter().map(|&l| victims::deletion_cost(l)).collect();
            let busy = loads.iter().filter(|l| !l.holds_nothing()).count();
            if applied != decision.from || decision.to != decision.from {
                tracing::info!(pool = %pool.name, from = decision.from, wanted = decision.to, to = applied,
                    reason = decision.reason.as_str(), outstanding_cost = cost, busy, dry_run = self.dry_run,
                    "{}", if self.dry_run { "would scale" } else { "scaling" });
            }
            if applied != decision.from
                && !self.dry_run
                && let Err(error) = self.backend.scale(pool, view, applied, &costs).await
            {
                self.meters.lock().expect("meters").backend_error(&pool.name);
                tracing::warn!(pool = %pool.name, error = %chain(&error), "cannot scale a pool");
            }
            self.meters.lock().expect("meters").record(&pool.name, cost, &decision, applied, busy as u32);
            rounds.push(PoolRound { pool: pool.name.clone(), decision, applied, loads });
        }
        rounds
    }

    /// Rounds every `interval` until `stop` completes; then the backend shuts down.
    pub async fn run(mut self, interval: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = &mut stop => break,
            }
            self.round().await;
            self.meters.lock().expect("meters").alive();
        }
        tracing::info!("stopping");
        self.backend.shutdown().await;
    }
}
