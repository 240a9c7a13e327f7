//! The sharing policies, slot by slot.

use super::*;

fn dispatcher(policy: SharePolicy, window: usize) -> Dispatcher {
    Dispatcher::new(Scheduling { policy, window: Some(window), weights: HashMap::new() })
}

#[test]
fn the_oldest_job_fills_the_window_and_later_ones_take_what_it_cannot_use() {
    let mut d = dispatcher(SharePolicy::Fair, 8);
    d.join("b", "c", 2);
    d.join("a", "c", 1);
    // b asks first, but only a's leftovers are its.
    assert_eq!(d.update("b", 10, 0), Update { grant: 8, wake: vec![] });
    // a arrives with 5 ready: the window is full, nothing for it until b's tasks finish.
    assert_eq!(d.update("a", 5, 0).grant, 0);
    // Three of b's tasks finish: those slots go to a, the older job, not back to b.
    let u = d.update("b", 2, 5);
    assert_eq!(u, Update { grant: 0, wake: vec!["a".into()] });
    assert_eq!(d.update("a", 5, 0).grant, 3);
    // a is nearly done (one ready task): work-conserving, b takes the rest.
    assert_eq!(d.update("a", 1, 1).grant, 1);
    assert_eq!(d.update("b", 2, 3).grant, 2);
}

#[test]
fn clients_share_by_weight_whatever_their_job_order() {
    let mut d = Dispatcher::new(Scheduling {
        policy: SharePolicy::Fair,
        window: Some(12),
        weights: HashMap::from([("heavy".to_owned(), 3)]),
    });
    d.join("old", "light", 1);
    d.join("new", "heavy", 2);
    assert_eq!(d.update("old", 100, 0).grant, 12);
    assert_eq!(d.update("new", 100, 0).grant, 0, "the window is full");
    // All twelve of old's tasks finish: the slots are shared 1:3 by weight.
    let old = d.update("old", 100, 0).grant;
    let new = d.update("new", 100, 0).grant;
    assert_eq!((old, new), (3, 9), "weights 1 and 3 split 12 slots 3:9");
}

#[test]
fn round_robin_evens_out_and_fifo_serves_the_oldest_only() {
    let mut d = dispatcher(SharePolicy::RoundRobin, 6);
    for (id, order) in [("a", 1), ("b", 2), ("c", 3)] {
        d.join(id, "x", order);
    }
    assert_eq!(d.update("a", 10, 0).grant, 6, "alone, a takes the window");
    assert_eq!(d.update("b", 10, 0).grant, 0);
    assert_eq!(d.update("c", 10, 0).grant, 0);
    // a's six finish: every job gets two.
    let a = d.update("a", 10, 0);
    assert_eq!(a, Update { grant: 2, wake: vec!["b".into(), "c".into()] });
    assert_eq!(d.update("b", 10, 0).grant, 2);
    assert_eq!(d.update("c", 10, 0).grant, 2);

    let mut d = dispatcher(SharePolicy::Fifo, 6);
    d.join("a", "x", 1);
    d.join("b", "y", 2);
    assert_eq!(d.update("b", 10, 0).grant, 6);
    assert_eq!(d.update("a", 10, 0).grant, 0, "b holds the window until its tasks finish");
    let b = d.update("b", 4, 2); // four of b's six finished
    assert_eq!(b, Update { grant: 0, wake: vec!["a".into()] }, "freed slots go to the oldest job");
    assert_eq!(d.update("a", 10, 0).grant, 4);
}

#[test]
fn unbounded_publishes_everything_and_a_leaving_job_frees_its_slots() {
    let mut d = dispatcher(SharePolicy::Unbounded, 1);
    d.join("a", "x", 1);
    assert_eq!(d.update("a", 1000, 0).grant, 1000);

    let mut d = dispatcher(SharePolicy::Fair, 4);
    d.join("a", "x", 1);
    d.join("b", "x", 2);
    assert_eq!(d.update("a", 4, 0).grant, 4);
    assert_eq!(d.update("b", 3, 0).grant, 0);
    assert_eq!(d.leave("a"), vec!["b".to_owned()]);
    assert_eq!(d.update("b", 3, 0).grant, 3);
    assert_eq!(d.update("unknown", 5, 0).grant, 5, "a job that never joined is not held back");
}

#[test]
fn the_automatic_window_follows_the_lanes_that_report_work_and_the_jobs_sharing_them() {
    let mut d = Dispatcher::new(Scheduling::default());
    let t0 = Instant::now();
    d.join("a", "x", 1);
    assert_eq!(d.window(), Dispatcher::AUTO_MIN_ALONE, "one job: a deep queue");
    d.join("b", "x", 2);
    assert_eq!(d.window(), Dispatcher::AUTO_MIN_SHARED, "shared: a short queue");
    for i in 0..100 {
        d.saw_lane(&format!("w{i}/0"), t0);
    }
    assert_eq!(d.window(), 100 * Dispatcher::AUTO_PER_LANE);
    d.saw_lane("w0/0", t0 + Dispatcher::LANE_MEMORY);
    d.forget_idle_lanes(t0 + Dispatcher::LANE_MEMORY + Duration::from_secs(1));
    assert_eq!(d.window(), Dispatcher::AUTO_MIN_SHARED, "one lane left");
}

#[test]
fn past_half_the_window_slots_are_refilled_in_chunks_and_below_it_at_once() {
    let mut d = dispatcher(SharePolicy::Fair, 256);
    d.join("a", "c", 1);
    assert_eq!(d.update("a", 1000, 0).grant, 256, "an empty window fills at once");
    // One result at a time: held until a chunk of the window is free.
    let chunk = 256 / Dispatcher::REFILL_CHUNKS;
    for out in (256 - chunk + 1..256).rev() {
        assert_eq!(d.update("a", 744, out).grant, 0, "{out} out");
    }
    assert_eq!(d.update("a", 744, 256 - chunk).grant, chunk);
    // The job's last tasks: nothing else ready, so a lone one goes at once below half.
    assert_eq!(d.update("a", 1, 128).grant, 1);
    // Jobs sharing the window get each slot as it frees, the oldest first.
    let mut d = dispatcher(SharePolicy::Fair, 256);
    d.join("a", "c", 1);
    d.join("b", "c", 2);
    assert_eq!(d.update("a", 1000, 0).grant, 256);
    assert_eq!(d.update("b", 10, 0).grant, 0, "the window is full");
    assert_eq!(d.update("a", 744, 255).grant, 1, "one slot free: the oldest job's at once");
    // Small windows are refilled slot by slot, as before.
    let mut d = dispatcher(SharePolicy::Fair, Dispatcher::REFILL_CHUNKS);
    d.join("a", "c", 1);
    assert_eq!(d.update("a", 100, 0).grant, Dispatcher::REFILL_CHUNKS);
    assert_eq!(d.update("a", 90, Dispatcher::REFILL_CHUNKS - 1).grant, 1);
}

#[test]
fn refill_never_leaves_a_chunk_unfilled_nor_waits_at_or_below_half_the_window() {
    for window in [1, 2, 16, 31, 32, 256, 400] {
        let chunk = (window / Dispatcher::REFILL_CHUNKS).max(1);
        for used in 0..=window {
            if !refill_now(window, used) {
                assert!(window - used < chunk, "window {window}: {} free slots left unfilled", window - used);
                assert!(used > window / 2, "window {window}: waited with only {used} out");
            }
        }
    }
}
