//! Table tests of the policy: each case is a sequence of (seconds, outstanding cost,
//! pools as they are) and the replicas and reasons it must produce.

use super::*;

const S: fn(u64) -> Duration = Duration::from_secs;

fn pool(name: &str, rate: f64, min: u32, max: u32) -> PoolSpec {
    PoolSpec { name: name.into(), target: format!("proofline-worker-{name}"), rate, min, max }
}

fn tuning() -> Tuning {
    Tuning {
        target_drain: S(100),
        scale_down_delay: S(60),
        idle_to_zero: S(300),
        max_burst: 4,
        pending_give_up: S(600),
    }
}

fn at(replicas: u32) -> PoolNow {
    PoolNow { replicas, ..PoolNow::default() }
}

/// Run one pool through `steps` of (second, cost), applying every decision, and
/// return (to, reason) per step.
fn run_one(spec: PoolSpec, start: u32, steps: &[(u64, f64)]) -> Vec<(u32, Reason)> {
    let mut policy = Policy::new(vec![spec], tuning());
    let mut replicas = start;
    steps
        .iter()
        .map(|&(t, cost)| {
            let d = policy.decide(S(t), cost, &[at(replicas)])[0];
            assert_eq!(d.from, replicas);
            replicas = d.to;
            (d.to, d.reason)
        })
        .collect()
}

#[test]
fn work_from_zero_gets_a_worker_within_one_decision() {
    // The smallest cost still asks for one worker.
    let got = run_one(pool("cpu", 1.0, 0, 10), 0, &[(0, 0.0), (10, 0.001)]);
    assert_eq!(got, vec![(0, Reason::IdleToMin), (1, Reason::ScaleUp)]);
}

#[test]
fn a_burst_scales_up_at_once_but_at_most_max_burst_per_decision() {
    // 1,000 units to clear in 100 s at 1/s per worker: 10 workers, capped at max 8.
    let got = run_one(pool("cpu", 1.0, 0, 8), 0, &[(0, 1000.0), (10, 1000.0), (20, 1000.0)]);
    assert_eq!(got, vec![(4, Reason::BurstLimited), (8, Reason::ScaleUp), (8, Reason::Steady)]);
}

#[test]
fn draining_scales_down_only_after_the_delay() {
    // 8 workers' worth, then 2 workers' worth: down after 60 s of lower recommendations.
    let steps = [(0, 800.0), (10, 800.0), (20, 200.0), (40, 200.0), (70, 200.0), (80, 200.0)];
    let got = run_one(pool("cpu", 1.0, 0, 8), 8, &steps);
    assert_eq!(
        got,
        vec![
            (8, Reason::Steady),
            (8, Reason::Steady),
            (8, Reason::DownDelayed),
            (8, Reason::DownDelayed),
            // At 70 s the recommendation at the horizon (10 s) was still 8.
            (8, Reason::DownDelayed),
            (2, Reason::ScaleDown),
        ]
    );
}

#[test]
fn flapping_input_is_damped() {
    // Cost swings between 8 and 1 workers' worth every decision: never scales down.
    let steps: Vec<(u64, f64)> = (0..30).map(|i| (i * 10, if i % 2 == 0 { 800.0 } else { 100.0 })).collect();
    let got = run_one(pool("cpu", 1.0, 0, 8), 8, &steps);
    assert!(got.iter().all(|(to, _)| *to == 8), "{got:?}");
}

#[test]
fn idle_keeps_a_warm_worker_then_goes_to_zero() {
    let mut steps = vec![(0, 300.0)];
    steps.extend((1..=40).map(|i| (i * 10, 0.0)));
    let got = run_one(pool("cpu", 1.0, 0, 8), 3, &steps);
    assert_eq!(got[0], (3, Reason::Steady));
    // Down to one warm worker after the delay...
    let warm_at = got.iter().position(|g| *g == (1, Reason::IdleWarm)).expect("a warm worker");
    assert_eq!(warm_at, 7, "{got:?}"); // 70 s: the 0 s recommendation of 3 left the window
    // ...and to zero after 300 s without work (+ the delay).
    let zero_at = got.iter().position(|(to, _)| *to == 0).expect("scaled to zero");
    assert_eq!(got[zero_at].1, Reason::IdleToMin);
    assert_eq!(zero_at, 36, "{got:?}"); // 300 s idle at 300 s, then 60 s of history
    assert!(got[zero_at..].iter().all(|(to, _)| *to == 0));
}

#[test]
fn a_pool_minimum_is_kept_even_when_idle() {
    let got = run_one(pool("cpu", 1.0, 2, 8), 0, &[(0, 0.0), (1000, 0.0)]);
    assert_eq!(got, vec![(2, Reason::ScaleUp), (2, Reason::IdleToMin)]);
}

#[test]
fn the_faster_pool_fills_first_and_the_rest_spills() {
    let mut policy = Policy::new(vec![pool("gpu", 10.0, 0, 2), pool("cpu", 1.0, 0, 20)], tuning());
    // 2,500 units in 100 s: 25/s. Two GPU workers give 20/s, five CPU workers the rest.
    let d = policy.decide(S(0), 2500.0, &[at(2), at(5)]);
    assert_eq!((d[0].to, d[1].to), (2, 5), "{d:?}");
    // 1,500 units: the GPU pool alone would need 2 (20/s >= 15/s): CPU gets nothing
    // (after the delay).
    let d = policy.decide(S(100), 1500.0, &[at(2), at(5)]);
    assert_eq!((d[0].to, d[1].to), (2, 5));
    let d = policy.decide(S(170), 1500.0, &[at(2), at(5)]);
    assert_eq!((d[0].to, d[1].to, d[1].reason), (2, 0, Reason::ScaleDown));
}

#[test]
fn pending_pods_stop_growth_and_spill_to_the_other_pool() {
    let mut policy = Policy::new(vec![pool("gpu", 10.0, 0, 8), pool("cpu", 1.0, 0, 20)], tuning());
    // 4,000 units: 4 GPU workers wanted. 2 are asked for, 1 is pending unschedulable.
    let gpu = PoolNow { replicas: 2, pending_unschedulable: 1, oldest_pending: Some(S(30)) };
    let d = policy.decide(S(0), 4000.0, &[gpu, at(0)]);
    assert_eq!((d[0].to, d[0].reason), (2, Reason::PendingPods));
    // The GPU pool counts as 2 workers (20/s): the other 20/s spill to the CPU pool, 4 at a time.
    assert_eq!((d[1].to, d[1].reason), (4, Reason::BurstLimited));
    // Pending past the give-up time: the GPU pool drops the pending pod at once.
    let gpu = PoolNow { replicas: 2, pending_unschedulable: 1, oldest_pending: Some(S(600)) };
    let d = policy.decide(S(10), 4000.0, &[gpu, at(4)]);
    assert_eq!((d[0].to, d[0].reason), (1, Reason::GaveUpPending));
    assert_eq!((d[1].to, d[1].reason), (8, Reason::BurstLimited));
}

#[test]
fn a_pool_with_max_zero_keeps_no_warm_worker() {
    let got = run_one(pool("cpu", 1.0, 0, 0), 2, &[(0, 0.0), (100, 0.0)]);
    assert_eq!(got, vec![(2, Reason::DownDelayed), (0, Reason::IdleWarm)]);
}

#[test]
fn a_restarted_policy_shrinks_nothing_for_one_delay() {
    // Less work than the pool's size from the first decision on: down only after 60 s.
    let got = run_one(pool("cpu", 1.0, 0, 8), 8, &[(0, 200.0), (30, 200.0), (60, 200.0)]);
    assert_eq!(got, vec![(8, Reason::DownDelayed), (8, Reason::DownDelayed), (2, Reason::ScaleDown)]);
}

#[test]
fn a_zero_rate_pool_is_never_asked_for_workers() {
    let got = run_one(pool("cpu", 0.0, 0, 8), 0, &[(0, 500.0)]);
    assert_eq!(got, vec![(0, Reason::Steady)]);
}

#[test]
fn reasons_have_distinct_labels() {
    let labels: std::collections::HashSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), Reason::ALL.len());
}
