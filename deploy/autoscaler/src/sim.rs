//! A simulated day of bursty block arrivals, proved by one pool of workers sized by
//! three policies, in one-second steps:
//! - `proofline`: this crate's [`Policy`] on all outstanding cost, shrinking only by
//!   workers that hold nothing ([`victims`]);
//! - `keda-style`: replicas from the broker's *ready* count only (`queueLength` tasks
//!   per pod), HPA-like 300 s scale-down window and cool-down to zero, victims chosen
//!   at random (the ReplicaSet does not know who is busy);
//! - `fixed`: replicas sized for the peak, always on.
//!
//! A block is `segments` tasks, then one aggregation task once they are all done.
//! New workers take `cold_start` seconds before their first task. Killing a busy
//! worker puts its task back on the queue: the seconds it ran are destroyed work.

use std::collections::VecDeque;
use std::fmt::Write;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::policy::{Policy, PoolNow, PoolSpec, Tuning};
use crate::victims::{self, Load};

#[derive(Clone, Debug, clap::Args)]
pub struct SimArgs {
    /// Seed of the arrival trace (the same trace drives every policy).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Simulated hours.
    #[arg(long, default_value_t = 24)]
    pub hours: u32,
    /// Segments per block.
    #[arg(long, default_value_t = 32)]
    pub segments: u32,
    /// Seconds one segment takes on one worker.
    #[arg(long, default_value_t = 20.0)]
    pub segment_secs: f64,
    /// Seconds the aggregation of a block takes.
    #[arg(long, default_value_t = 15.0)]
    pub aggregate_secs: f64,
    /// Seconds from asking for a worker to its first task.
    #[arg(long, default_value_t = 45.0)]
    pub cold_start: f64,
    /// Most workers.
    #[arg(long, default_value_t = 32)]
    pub max_workers: u32,
    /// Seconds between autoscaler rounds.
    #[arg(long, default_value_t = 10)]
    pub interval: u64,
    /// Proofline policy: size the pool to clear outstanding work in this many seconds.
    #[arg(long, default_value_t = 120)]
    pub target_drain: u64,
    /// Proofline policy: scale-down delay, seconds.
    #[arg(long, default_value_t = 60)]
    pub scale_down_delay: u64,
    /// Proofline policy: seconds without work before the pool goes to its minimum.
    #[arg(long, default_value_t = 300)]
    pub idle_to_zero: u64,
    /// Proofline policy: the pool's minimum (warm workers kept when idle).
    #[arg(long, default_value_t = 0)]
    pub min_workers: u32,
}

/// One policy's day.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub policy: &'static str,
    pub worker_seconds: f64,
    pub p50: f64,
    pub p99: f64,
    pub blocks: usize,
    pub tasks_killed: u64,
    pub destroyed_seconds: f64,
}

#[derive(Clone, Copy)]
struct Task {
    block: usize,
    secs: f64,
    aggregate: bool,
}

struct Worker {
    ready_at: f64,
    running: Option<(Task, f64)>,
}

/// Block arrival times (seconds): bursts of 5-40 blocks 12 s apart, about one burst
/// an hour, and a lone block about every 20 minutes.
pub fn trace(seed: u64, hours: u32) -> Vec<f64> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let end = f64::from(hours) * 3600.0;
    let mut arrivals = Vec::new();
    let mut t = 0.0;
    loop {
        t += -3600.0 * (1.0 - rng.random::<f64>()).ln();
        if t >= end {
            break;
        }
        let n = rng.random_range(5..=40);
        arrivals.extend((0..n).map(|i| t + 12.0 * f64::from(i)).filter(|&a| a < end));
    }
    let mut t = 0.0;
    loop {
        t += -1200.0 * (1.0 - rng.random::<f64>()).ln();
        if t >= end {
            break;
        }
        arrivals.push(t);
    }
    arrivals.sort_by(f64::total_cmp);
    arrivals
}

enum Sizing {
    Proofline(Policy),
    Keda { per_pod: u32, window: VecDeque<(f64, u32)>, last_active: f64, rng: SmallRng },
    Fixed(u32),
}

/// Run one policy over `arrivals`.
fn simulate(args: &SimArgs, arrivals: &[f64], name: &'static str, mut sizing: Sizing) -> Outcome {
    let step = 1.0;
    let end = arrivals.last().copied().unwrap_or(0.0) + 3.0 * 3600.0;
    let mut workers: Vec<Worker> = Vec::new();
    let mut queue: VecDeque<Task> = VecDeque::new();
    let mut left: Vec<u32> = vec![args.segments; arrivals.len()];
    let mut done_at: Vec<Option<f64>> = vec![None; arrivals.len()];
    let (mut next, mut worker_seconds, mut killed, mut destroyed) = (0, 0.0, 0u64, 0.0);
    let mut t = 0.0;
    while t < end {
        while next < arrivals.len() && arrivals[next] <= t {
            queue.extend((0..args.segments).map(|_| Task {
                block: next,
                secs: args.segment_secs,
                aggregate: false,
            }));
            next += 1;
        }
        // Finish and start tasks.
        for w in &mut workers {
            if let Some((task, started)) = w.running
                && started + task.secs <= t
            {
                w.running = None;
                if task.aggregate {
                    done_at[task.block] = Some(t);
                } else {
                    left[task.block] -= 1;
                    if left[task.block] == 0 {
                        let agg = Task { block: task.block, secs: args.aggregate_secs, aggregate: true };
                        queue.push_front(agg);
                    }
                }
            }
            if w.running.is_none() && w.ready_at <= t {
                w.running = queue.pop_front().map(|task| (task, t));
            }
        }
        if (t as u64).is_multiple_of(args.interval) {
            let loads: Vec<Load> = workers
                .iter()
                .map(|w| match w.running {
                    Some(_) => Load::Busy(1),
                    None if w.ready_at > t => Load::Starting,
                    None => Load::Idle,
                })
                .collect();
            let outstanding: f64 = queue.iter().map(|q| q.secs).sum::<f64>()
                + workers
                    .iter()
                    .filter_map(|w| w.running.map(|(q, s)| (s + q.secs - t).max(0.0)))
                    .sum::<f64>();
            let current = workers.len() as u32;
            let victims = match &mut sizing {
                Sizing::Proofline(policy) => {
                    let now = PoolNow { replicas: current, ..PoolNow::default() };
                    let d = policy.decide(Duration::from_secs_f64(t), outstanding, &[now])[0];
                    let to = victims::safe_target(current, d.to, &loads);
                    grow(&mut workers, to, t + args.cold_start);
                    victims::pick(&loads, current.saturating_sub(to) as usize)
                }
                Sizing::Keda { per_pod, window, last_active, rng } => {
                    let ready = queue.len() as u32;
                    if ready > 0 {
                        *last_active = t;
                    }
                    let mut want = ready.div_ceil(*per_pod).min(args.max_workers);
                    if want == 0 && t - *last_active < 300.0 {
                        want = current.min(1);
                    }
                    window.push_back((t, want));
                    while window.front().is_some_and(|(at, _)| *at < t - 300.0) {
                        window.pop_front();
                    }
                    let to =
                        if want >= current { want } else { window.iter().map(|w| w.1).max().unwrap_or(0) };
                    grow(&mut workers, to, t + args.cold_start);
                    let mut all: Vec<usize> = (0..workers.len()).collect();
                    let mut chosen = Vec::new();
                    for _ in to..current {
                        chosen.push(all.swap_remove(rng.random_range(0..all.len())));
                    }
                    chosen
                }
                Sizing::Fixed(n) => {
                    grow(&mut workers, *n, 0.0);
                    Vec::new()
                }
            };
            let mut victims = victims;
            victims.sort_unstable_by(|a, b| b.cmp(a));
            for i in victims {
                if let Some((task, started)) = workers.swap_remove(i).running {
                    killed += 1;
                    destroyed += t - started;
                    queue.push_front(task);
                }
            }
        }
        worker_seconds += workers.len() as f64 * step;
        t += step;
    }
    let mut latencies: Vec<f64> =
        arrivals.iter().zip(&done_at).filter_map(|(a, d)| Some(d.as_ref()? - a)).collect();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN)
    };
    Outcome {
        policy: name,
        worker_seconds,
        p50: pct(0.5),
        p99: pct(0.99),
        blocks: latencies.len(),
        tasks_killed: killed,
        destroyed_seconds: destroyed,
    }
}

fn grow(workers: &mut Vec<Worker>, to: u32, ready_at: f64) {
    while (workers.len() as u32) < to {
        workers.push(Worker { ready_at, running: None });
    }
}

/// Every policy on the same trace.
pub fn compare(args: &SimArgs) -> Vec<Outcome> {
    let arrivals = trace(args.seed, args.hours);
    let pool = PoolSpec {
        name: "sim".into(),
        target: "sim".into(),
        rate: 1.0,
        min: args.min_workers.min(args.max_workers),
        max: args.max_workers,
    };
    let tuning = Tuning {
        target_drain: Duration::from_secs(args.target_drain),
        scale_down_delay: Duration::from_secs(args.scale_down_delay),
        idle_to_zero: Duration::from_secs(args.idle_to_zero),
        max_burst: args.max_workers,
        pending_give_up: Duration::from_secs(600),
    };
    let keda = Sizing::Keda {
        per_pod: 5,
        window: VecDeque::new(),
        last_active: 0.0,
        rng: SmallRng::seed_from_u64(args.seed),
    };
    vec![
        simulate(args, &arrivals, "proofline", Sizing::Proofline(Policy::new(vec![pool], tuning))),
        simulate(args, &arrivals, "keda-style", keda),
        simulate(args, &arrivals, "fixed (peak)", Sizing::Fixed(args.max_workers)),
    ]
}

/// `proofline-autoscaler simulate`: the comparison as a Markdown table.
pub fn run(args: &SimArgs) -> Result<String, String> {
    if args.hours == 0 || args.segments == 0 || args.max_workers == 0 || args.interval == 0 {
        return Err("--hours, --segments, --max-workers and --interval must be above 0".into());
    }
    let outcomes = compare(args);
    let mut out = format!(
        "{} blocks of {} x {} s segments + {} s aggregation over {} h (seed {}), cold start {} s, at most {} workers\n\n",
        trace(args.seed, args.hours).len(),
        args.segments,
        args.segment_secs,
        args.aggregate_secs,
        args.hours,
        args.seed,
        args.cold_start,
        args.max_workers
    );
    out.push_str("| policy | worker-hours | p50 latency (s) | p99 latency (s) | blocks proven | tasks killed | work destroyed (worker-s) |\n");
    out.push_str("|---|---|---|---|---|---|---|\n");
    for o in &outcomes {
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0} | {:.0} | {} | {} | {:.0} |",
            o.policy,
            o.worker_seconds / 3600.0,
            o.p50,
            o.p99,
            o.blocks,
            o.tasks_killed,
            o.destroyed_seconds
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(hours: u32) -> SimArgs {
        SimArgs {
            seed: 3,
            hours,
            segments: 8,
            segment_secs: 10.0,
            aggregate_secs: 5.0,
            cold_start: 30.0,
            max_workers: 16,
            interval: 10,
            target_drain: 120,
            scale_down_delay: 60,
            idle_to_zero: 300,
            min_workers: 0,
        }
    }

    #[test]
    fn every_policy_proves_every_block_and_only_ours_and_fixed_destroy_nothing() {
        let a = args(6);
        let blocks = trace(a.seed, a.hours).len();
        let out = compare(&a);
        for o in &out {
            assert_eq!(o.blocks, blocks, "{o:?}");
            assert!(o.p50 > 0.0 && o.p99 >= o.p50, "{o:?}");
        }
        let (ours, keda, fixed) = (&out[0], &out[1], &out[2]);
        assert_eq!((ours.tasks_killed, fixed.tasks_killed), (0, 0));
        assert!(keda.tasks_killed > 0, "ready-only sizing with random victims kills busy workers: {keda:?}");
        assert!(ours.worker_seconds < fixed.worker_seconds / 2.0, "{ours:?} vs {fixed:?}");
    }

    #[test]
    fn the_trace_is_bursty_and_reproducible() {
        let t = trace(1, 24);
        assert_eq!(t, trace(1, 24));
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        let gaps_of_12 = t.windows(2).filter(|w| (w[1] - w[0] - 12.0).abs() < 1e-9).count();
        assert!(gaps_of_12 > t.len() / 2, "mostly bursts: {gaps_of_12} of {}", t.len());
    }
}
