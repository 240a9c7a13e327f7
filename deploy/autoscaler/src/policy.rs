//! How many workers each pool should have: a pure function of what is outstanding,
//! what the pools have now, and what was recommended lately. No I/O; the controller
//! feeds it observations and carries out its decisions.
//!
//! # One decision
//! 1. Work clock: while any cost is outstanding, `last_work` is now.
//! 2. Capacity wanted: outstanding cost / target drain time (cost units per second).
//! 3. Split it over the pools in order of preference (the fastest first): each pool
//!    takes `ceil(still wanted / its per-worker rate)` workers up to its cap, the rest
//!    spills to the next. A pool with pods pending unschedulable is capped at what it
//!    has (no more pods into a full cluster); once they have waited past the give-up
//!    time it is capped at what runs, and the rest spills over.
//! 4. Idle: with nothing outstanding, a pool keeps one warm worker (if it has one)
//!    until the work has been gone for the idle time; then it goes to its minimum
//!    (zero by default). From zero, any outstanding cost asks for a worker at once.
//! 5. Up at once, at most `max_burst` more per decision; down only to the highest
//!    recommendation of the last `scale_down_delay` (flapping input is damped),
//!    and only once that much history exists (a restarted policy shrinks nothing for
//!    one delay).
//!
//! The controller lowers replicas further only as far as idle workers allow (see
//! [`crate::victims`]): this policy decides how many, never which.

use std::collections::VecDeque;
use std::time::Duration;

/// A pool of interchangeable workers (one Deployment, or processes on this host).
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSpec {
    pub name: String,
    /// The Deployment (kube backend); unused by the local backend.
    pub target: String,
    /// Cost units one worker of this pool clears per second.
    pub rate: f64,
    pub min: u32,
    pub max: u32,
}

/// The knobs of the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tuning {
    /// Size pools to clear all outstanding work in this long.
    pub target_drain: Duration,
    /// Scale down only to the highest recommendation of this long.
    pub scale_down_delay: Duration,
    /// With no work at all for this long, pools go to their minimum.
    pub idle_to_zero: Duration,
    /// Most workers added to one pool in one decision.
    pub max_burst: u32,
    /// Pods pending unschedulable this long are given up on.
    pub pending_give_up: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            target_drain: Duration::from_secs(120),
            scale_down_delay: Duration::from_secs(60),
            idle_to_zero: Duration::from_secs(300),
            max_burst: 8,
            pending_give_up: Duration::from_secs(600),
        }
    }
}

/// One pool as the backend sees it now.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolNow {
    /// Replicas asked for (the Deployment's `spec.replicas`, or processes started).
    pub replicas: u32,
    /// Pods that cannot be scheduled (no node has room).
    pub pending_unschedulable: u32,
    /// How long the oldest of them has waited.
    pub oldest_pending: Option<Duration>,
}

/// Why a pool gets the replicas it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Already the right size.
    Steady,
    ScaleUp,
    /// Wanted more, added `max_burst`.
    BurstLimited,
    /// Wanted more, but pods are pending unschedulable: adds none.
    PendingPods,
    /// Pending pods waited past the give-up time: back to what can run.
    GaveUpPending,
    /// Wants fewer, but not for `scale_down_delay` yet.
    DownDelayed,
    ScaleDown,
    /// No work; keeps a warm worker until the idle time is up.
    IdleWarm,
    /// No work for the idle time: to the pool's minimum.
    IdleToMin,
}

impl Reason {
    pub const ALL: [Reason; 9] = [
        Reason::Steady,
        Reason::ScaleUp,
        Reason::BurstLimited,
        Reason::PendingPods,
        Reason::GaveUpPending,
        Reason::DownDelayed,
        Reason::ScaleDown,
        Reason::IdleWarm,
        Reason::IdleToMin,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::ScaleUp => "scale_up",
            Self::BurstLimited => "burst_limited",
            Self::PendingPods => "pending_pods",
            Self::GaveUpPending => "gave_up_pending",
            Self::DownDelayed => "down_delayed",
            Self::ScaleDown => "scale_down",
            Self::IdleWarm => "idle_warm",
            Self::IdleToMin => "idle_to_min",
        }
    }
}

/// What one pool should have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Decision {
    pub from: u32,
    pub to: u32,
    pub reason: Reason,
}

/// The policy with its memory (recent recommendations, last time work was seen).
#[derive(Clone, Debug)]
pub struct Policy {
    pools: Vec<PoolSpec>,
    tuning: Tuning,
    /// Per pool: (time, recommendation), oldest first, spanning `scale_down_delay`.
    history: Vec<VecDeque<(Duration, u32)>>,
    started: Option<Duration>,
    last_work: Option<Duration>,
}

impl Policy {
    pub fn new(pools: Vec<PoolSpec>, tuning: Tuning) -> Self {
        let history = pools.iter().map(|_| VecDeque::new()).collect();
        Self { pools, tuning, history, started: None, last_work: None }
    }

    pub fn pools(&self) -> &[PoolSpec] {
        &self.pools
    }

    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// Decide every pool's replicas at `now` (any monotonic clock), given the cost
    /// outstanding and each pool as it is (`pools_now[i]` is `self.pools()[i]`).
    pub fn decide(&mut self, now: Duration, outstanding_cost: f64, pools_now: &[PoolNow]) -> Vec<Decision> {
        assert_eq!(pools_now.len(), self.pools.len(), "one observation per pool");
        let started = *self.started.get_or_insert(now);
        let working = outstanding_cost > 0.0;
        if working {
            self.last_work = Some(now);
        }
        let idle_for = now.saturating_sub(self.last_work.unwrap_or(started));
        let wanted = self.split(outstanding_cost, pools_now);
        let mut decisions = Vec::with_capacity(self.pools.len());
        for (i, (spec, now_)) in self.pools.iter().zip(pools_now).enumerate() {
            let (recommended, why) = match wanted[i] {
                _ if !working && idle_for < self.tuning.idle_to_zero && now_.replicas > 0 => {
                    (spec.min.max(1).min(spec.max), Some(Reason::IdleWarm))
                }
                _ if !working => (spec.min, Some(Reason::IdleToMin)),
                (n, capped) => (n.max(spec.min), capped),
            };
            let history = &mut self.history[i];
            history.push_back((now, recommended));
            let horizon = now.saturating_sub(self.tuning.scale_down_delay);
            while history.len() > 1 && history[1].0 <= horizon {
                history.pop_front();
            }
            // A fresh policy (e.g. a restarted autoscaler) has no history: it shrinks
            // nothing until it has watched for a whole delay.
            let horizon = (now.saturating_sub(started) >= self.tuning.scale_down_delay).then_some(horizon);
            decisions.push(step(now_.replicas, recommended, why, history, horizon, &self.tuning, now_));
        }
        decisions
    }

    /// Step 3: workers wanted per pool, in order of preference, and the reason when a
    /// pool's cap bit.
    fn split(&self, cost: f64, pools_now: &[PoolNow]) -> Vec<(u32, Option<Reason>)> {
        let mut still = cost.max(0.0) / self.tuning.target_drain.as_secs_f64().max(1e-9);
        let mut out = Vec::with_capacity(self.pools.len());
        for (spec, now) in self.pools.iter().zip(pools_now) {
            let (cap, capped_reason) = if now.pending_unschedulable == 0 {
                (spec.max, None)
            } else if now.oldest_pending.is_some_and(|w| w >= self.tuning.pending_give_up) {
                (now.replicas.saturating_sub(now.pending_unschedulable), Some(Reason::GaveUpPending))
            } else {
                (now.replicas.min(spec.max), Some(Reason::PendingPods))
            };
            let need = if still <= 0.0 || spec.rate <= 0.0 { 0 } else { (still / spec.rate).ceil() as u32 };
            let take = need.min(cap);
            still -= f64::from(take) * spec.rate;
            out.push((
                take,
                capped_reason.filter(|_| need > cap || capped_reason == Some(Reason::GaveUpPending)),
            ));
        }
        out
    }
}

/// Step 5 for one pool.
fn step(
    current: u32,
    recommended: u32,
    why: Option<Reason>,
    history: &VecDeque<(Duration, u32)>,
    horizon: Option<Duration>,
    tuning: &Tuning,
    now: &PoolNow,
) -> Decision {
    let decide = |to, reason| Decision { from: current, to, reason };
    if why == Some(Reason::GaveUpPending) && recommended < current {
        // Pods that never schedule hold nothing: drop them at once.
        return decide(recommended, Reason::GaveUpPending);
    }
    if recommended > current {
        if now.pending_unschedulable > 0 {
            return decide(current, Reason::PendingPods);
        }
        let to = recommended.min(current.saturating_add(tuning.max_burst.max(1)));
        return decide(to, if to < recommended { Reason::BurstLimited } else { Reason::ScaleUp });
    }
    if recommended == current {
        return decide(current, why.unwrap_or(Reason::Steady));
    }
    // Fewer wanted: only down to the most recommended within the delay, and only when
    // the history covers the whole delay.
    let covers = horizon.is_some_and(|h| history.front().is_some_and(|(t, _)| *t <= h));
    let highest = history.iter().map(|(_, r)| *r).max().unwrap_or(current);
    if !covers || highest >= current {
        return decide(current, Reason::DownDelayed);
    }
    let reason = match why {
        Some(r @ (Reason::IdleToMin | Reason::IdleWarm)) => r,
        _ => Reason::ScaleDown,
    };
    decide(highest, reason)
}

#[cfg(test)]
mod tests;
