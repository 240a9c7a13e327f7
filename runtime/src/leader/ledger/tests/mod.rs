//! Every failure path of the ledger, driven by hand: no runtime, no sleeps, no I/O.

use super::*;
use crate::leader::journal::SegmentRef;
use crate::leader::segments::SegmentTable;

const SILENCE: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(60);

fn art(name: &str) -> ArtifactRef {
    ArtifactRef {
        uri: format!("mem:job-1-abcdef12/{name}"),
        blake3: *blake3::hash(name.as_bytes()).as_bytes(),
        len: 1,
    }
}

/// A ledger whose ready tasks are all released at once (an unbounded window), so each
/// event's effects include what it made ready. It keeps the journal the ledger writes
/// and answers its recalls from it, and its page loads from the plan's segments, as the
/// job actor does.
struct Eager(JobLedger, Vec<Record>, Vec<SegmentRef>);

impl std::ops::Deref for Eager {
    type Target = JobLedger;
    fn deref(&self) -> &JobLedger {
        &self.0
    }
}

impl std::ops::DerefMut for Eager {
    fn deref_mut(&mut self) -> &mut JobLedger {
        &mut self.0
    }
}

impl Eager {
    fn all(&mut self, mut fx: Vec<Effect>, now: Instant) -> Vec<Effect> {
        fx.extend(self.0.release(usize::MAX, now));
        let mut from = 0;
        while from < fx.len() {
            let more = self.read_back(&fx[from..], now);
            from = fx.len();
            if !more.is_empty() {
                fx.extend(more);
                fx.extend(self.0.release(usize::MAX, now));
            }
        }
        fx
    }
    /// Keep what `fx` journals; answer its recalls and page loads (the ledger's effects).
    fn read_back(&mut self, fx: &[Effect], now: Instant) -> Vec<Effect> {
        let mut more = Vec::new();
        for e in fx {
            match e {
                Effect::Journal(r) => self.1.push(r.clone()),
                Effect::Recall(ranges) => {
                    let found = ranges.iter().filter_map(|&(a, b)| {
                        self.1.iter().rev().find(|r| (r.start, r.end) == (a, b)).cloned()
                    });
                    let found = found.collect();
                    more.extend(self.0.on_recalled(found, now));
                }
                &Effect::LoadSegments(page) => {
                    let per = PER_PAGE;
                    let table =
                        self.2[page * per..((page + 1) * per).min(self.2.len())].iter().cloned().collect();
                    more.extend(self.0.on_segments(page, table, now));
                }
                _ => {}
            }
        }
        more
    }
    fn start(&mut self, records: Vec<Record>, now: Instant) -> Vec<Effect> {
        self.1.extend(records.iter().cloned());
        let fx = self.0.start(records, now);
        self.all(fx, now)
    }
    fn on_results(&mut self, results: Vec<TaskResult>, now: Instant) -> Vec<Effect> {
        let fx = self.0.on_results(results, now);
        self.all(fx, now)
    }
    fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        let fx = self.0.on_tick(now);
        self.all(fx, now)
    }
    fn on_wrap_input_unusable(
        &mut self,
        uri: &str,
        leaf: Option<u32>,
        message: &str,
        now: Instant,
    ) -> Vec<Effect> {
        let fx = self.0.on_wrap_input_unusable(uri, leaf, message, now);
        self.all(fx, now)
    }
}

/// Segments per page of [`paged`] ledgers.
const PER_PAGE: usize = 4;

fn segment_refs(n: u32) -> Vec<SegmentRef> {
    (0..n).map(|i| SegmentRef { payload: art(&format!("seg-{i}.in")), cost: 10 + i as u64 }).collect()
}

/// A ledger of `n` segments whose plan is read back in pages of [`PER_PAGE`].
fn paged(n: u32) -> Eager {
    let refs = segment_refs(n);
    let pages = SegmentPages::paged(refs.iter().map(|r| r.cost).collect(), PER_PAGE);
    let mut l = ledger(0);
    l.0 = JobLedger::new(l.0.who.clone(), policy(), pages).with_timeline();
    l.2 = refs;
    l
}

fn policy() -> Policy {
    Policy { max_attempts: 3, silence: SILENCE, timeout_of: Box::new(|_, _| TIMEOUT) }
}

fn ledger(n: u32) -> Eager {
    let who = Identity {
        job: "job-1-abcdef12".into(),
        run: 7,
        plugin: "sim@1".into(),
        reply_to: "proofline.results.x".into(),
    };
    let segments = SegmentPages::held(segment_refs(n).into_iter().collect());
    Eager(JobLedger::new(who, policy(), segments).with_timeline(), Vec::new(), Vec::new())
}

fn result(task: &Task, outcome: Outcome) -> TaskResult {
    TaskResult::of(task, outcome, "w/0".into(), 0)
}

fn done(task: &Task) -> TaskResult {
    result(task, Outcome::Done(art(&task.id)))
}

fn published(fx: &[Effect]) -> Vec<Task> {
    fx.iter().filter_map(|e| if let Effect::Publish(t) = e { Some(t.clone()) } else { None }).collect()
}

fn failure(fx: &[Effect]) -> Option<&Failure> {
    fx.iter().find_map(|e| if let Effect::Fail(f) = e { Some(f) } else { None })
}

fn wrapped(fx: &[Effect]) -> Option<&ArtifactRef> {
    fx.iter().find_map(|e| if let Effect::Wrap(r) = e { Some(r) } else { None })
}

/// Start `n` segments at `t0` and return their tasks.
fn started(n: u32, t0: Instant) -> (Eager, Vec<Task>) {
    let mut l = ledger(n);
    let fx = l.start(Vec::new(), t0);
    let tasks = published(&fx);
    assert_eq!(tasks.len(), n as usize);
    (l, tasks)
}

#[test]
fn a_job_folds_to_one_wrap_with_ranges_from_its_own_records() {
    let t0 = Instant::now();
    let (mut l, segs) = started(3, t0);
    assert!(segs.iter().all(|t| t.run == 7 && t.attempt == 1 && t.deadline_ms == 60_000));
    // A forged range in the message is ignored: the ledger uses its own record.
    let mut forged = done(&segs[2]);
    (forged.start, forged.end) = (999, 1000);
    let fx = l.on_results(vec![forged, done(&segs[1])], t0);
    let agg = published(&fx);
    assert_eq!(agg.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["agg-1-2"]);
    assert_eq!(fx.iter().filter(|e| matches!(e, Effect::Journal(_))).count(), 2);
    let fx = l.on_results(vec![done(&segs[0]), done(&agg[0])], t0);
    let root = published(&fx);
    assert_eq!(root[0].id, "agg-0-2");
    let fx = l.on_results(vec![done(&root[0])], t0);
    assert_eq!(wrapped(&fx), Some(&art("agg-0-2")));
    assert!(l.is_over());
    assert_eq!(l.1.iter().filter(|r| r.task.starts_with("seg-")).count(), 3, "every leaf is journalled");
    assert_eq!(l.held(), 1, "only the root is held once the fold is done");
    assert_eq!(l.progress().segments_done, 3);
    assert!(l.on_results(vec![done(&segs[0])], t0).is_empty(), "an ended ledger does nothing");
}

#[test]
fn heartbeats_of_finished_tasks_are_not_duplicates_but_second_successes_are() {
    let t0 = Instant::now();
    let (mut l, segs) = started(2, t0);
    l.on_results(vec![done(&segs[0])], t0);
    l.on_results(vec![result(&segs[0], Outcome::Running), result(&segs[0], Outcome::Running)], t0);
    assert_eq!(l.stats().duplicates, 0);
    l.on_results(vec![done(&segs[0])], t0);
    assert_eq!(l.stats().duplicates, 1);
}

#[test]
fn a_silent_task_is_redispatched_and_a_spent_one_fails_the_job() {
    let t0 = Instant::now();
    let (mut l, _) = started(1, t0);
    assert!(l.on_tick(t0 + SILENCE).is_empty(), "not yet past the deadline");
    let fx = l.on_tick(t0 + SILENCE + Duration::from_millis(1));
    assert_eq!(published(&fx)[0].attempt, 2);
    let fx = l.on_tick(t0 + 2 * SILENCE + Duration::from_millis(2));
    assert_eq!(published(&fx)[0].attempt, 3);
    let fx = l.on_tick(t0 + 3 * SILENCE + Duration::from_millis(3));
    assert!(matches!(failure(&fx), Some(Failure::TaskFailed { attempts: 3, .. })), "{fx:?}");
    assert_eq!(l.stats().redispatches, 2);
}

#[test]
fn heartbeats_keep_a_task_alive_but_not_past_its_timeout() {
    let t0 = Instant::now();
    let (mut l, segs) = started(1, t0);
    // Heartbeats every 5 s: never silent.
    let mut now = t0;
    for _ in 0..12 {
        now += Duration::from_secs(5);
        let mut beat = result(&segs[0], Outcome::Running);
        beat.exec_micros = (now - t0).as_micros() as u64;
        l.on_results(vec![beat], now);
        let fx = l.on_tick(now);
        assert!(fx.is_empty(), "at {:?}: {fx:?}", now - t0);
    }
    // 60 s of running is the timeout; past it the attempt is abandoned and sent again.
    now += Duration::from_secs(1);
    let fx = l.on_tick(now);
    assert_eq!(fx[0], Effect::Abandon { task: "seg-0".into(), attempt: 1 });
    let again = published(&fx);
    assert_eq!((again[0].id.as_str(), again[0].attempt), ("seg-0", 2));
    assert_eq!(l.stats().timeouts, 1);
    // The abandoned attempt's late heartbeat and failure change nothing.
    let mut late = result(&segs[0], Outcome::Running);
    late.exec_micros = 1;
    assert!(l.on_results(vec![late], now).is_empty());
    let cancelled = Outcome::Failed { message: "cancelled".into(), retryable: true };
    assert!(l.on_results(vec![result(&segs[0], cancelled)], now).is_empty());
    assert!(l.on_tick(now + Duration::from_secs(9)).is_empty(), "the new attempt has a fresh clock");
}

#[test]
fn retryable_failures_retry_and_permanent_ones_fail() {
    let t0 = Instant::now();
    let (mut l, segs) = started(2, t0);
    let retry = Outcome::Failed { message: "flaky".into(), retryable: true };
    let fx = l.on_results(vec![result(&segs[0], retry)], t0);
    assert_eq!(published(&fx)[0].attempt, 2);
    assert_eq!(l.stats().retries, 1);
    let fatal = Outcome::Failed { message: "bad".into(), retryable: false };
    let fx = l.on_results(vec![result(&segs[1], fatal)], t0);
    assert_eq!(
        failure(&fx),
        Some(&Failure::TaskFailed { task: "seg-1".into(), attempts: 1, message: "bad".into() })
    );
}

#[test]
fn a_success_from_an_older_attempt_wins() {
    let t0 = Instant::now();
    let (mut l, segs) = started(1, t0);
    l.on_tick(t0 + SILENCE * 2);
    let fx = l.on_results(vec![done(&segs[0])], t0 + SILENCE * 2);
    assert!(wrapped(&fx).is_some());
}

#[test]
fn cancel_fails_once() {
    let (mut l, _) = started(2, Instant::now());
    assert_eq!(failure(&l.cancel("stop")), Some(&Failure::Cancelled("stop".into())));
    assert!(l.cancel("again").is_empty());
}

/// seg-0 and seg-1 done, agg-0-1 out; then agg-0-1 finds seg-1's artifact unusable.
fn corrupt_setup(t0: Instant) -> (Eager, Vec<Task>, Task) {
    let (mut l, segs) = started(2, t0);
    let fx = l.on_results(vec![done(&segs[0]), done(&segs[1])], t0);
    let agg = published(&fx).remove(0);
    (l, segs, agg)
}

#[test]
fn a_corrupt_input_is_repaired_and_only_the_repairs_success_releases_the_consumer() {
    let t0 = Instant::now();
    let (mut l, _, agg) = corrupt_setup(t0);
    let bad = Outcome::CorruptInput { uri: art("seg-1").uri, message: "digest mismatch".into() };
    let fx = l.on_results(vec![result(&agg, bad)], t0);
    let repair = published(&fx).remove(0);
    assert_eq!((repair.id.as_str(), repair.attempt, repair.max_attempts), ("seg-1", 2, 4));
    // The producer's heartbeat must not send the consumer out again (it would re-read
    // the still-corrupt bytes), and a parked consumer never times out.
    let fx = l.on_results(vec![result(&repair, Outcome::Running)], t0 + Duration::from_secs(1));
    assert!(fx.is_empty(), "{fx:?}");
    assert!(published(&l.on_tick(t0 + SILENCE + Duration::from_secs(1))).is_empty());
    // Its success does, with the next attempt.
    let fx = l.on_results(vec![done(&repair)], t0 + Duration::from_secs(2));
    let retried = published(&fx);
    assert_eq!((retried[0].id.as_str(), retried[0].attempt), ("agg-0-1", 2));
    assert_eq!(l.stats().repairs, 1);
    assert!(wrapped(&l.on_results(vec![done(&retried[0])], t0)).is_some());
}

#[test]
fn an_unusable_input_the_task_does_not_read_is_an_ordinary_failure() {
    let t0 = Instant::now();
    let (mut l, _, agg) = corrupt_setup(t0);
    let bad = Outcome::CorruptInput { uri: "mem:job-1-abcdef12/elsewhere".into(), message: "gone".into() };
    let fx = l.on_results(vec![result(&agg, bad)], t0);
    let retried = published(&fx);
    assert_eq!((retried[0].id.as_str(), retried[0].attempt), ("agg-0-1", 2));
    assert_eq!(l.stats().repairs, 0);
}

#[test]
fn a_repaired_artifact_with_new_bytes_reaches_the_consumer_and_the_journal() {
    let t0 = Instant::now();
    let (mut l, _, agg) = corrupt_setup(t0);
    let bad = Outcome::CorruptInput { uri: art("seg-1").uri, message: "missing".into() };
    let repair = published(&l.on_results(vec![result(&agg, bad)], t0)).remove(0);
    let mut fresh = art("seg-1");
    fresh.blake3 = [9; 32];
    let fx = l.on_results(vec![result(&repair, Outcome::Done(fresh.clone()))], t0);
    assert!(fx.iter().any(|e| matches!(e, Effect::Journal(r) if r.artifact == fresh)));
    assert_eq!(published(&fx)[0].inputs[1], fresh);
}

#[test]
fn a_leaf_wrap_cannot_read_is_remade_and_wrap_runs_again() {
    let t0 = Instant::now();
    let (mut l, segs) = started(2, t0);
    let agg = published(&l.on_results(segs.iter().map(done).collect(), t0)).remove(0);
    let fx = l.on_results(vec![done(&agg)], t0);
    assert_eq!(wrapped(&fx), Some(&art("agg-0-1")));
    // Wrap finds seg-1 missing: seg-1 runs again, and nothing wraps until it is back.
    let fx = l.on_wrap_input_unusable(&art("seg-1").uri, Some(1), "artifact missing", t0);
    let repair = published(&fx).remove(0);
    assert_eq!((repair.id.as_str(), repair.attempt), ("seg-1", 2));
    assert!(wrapped(&l.on_results(vec![result(&repair, Outcome::Running)], t0)).is_none());
    let fx = l.on_results(vec![done(&repair)], t0);
    assert_eq!(wrapped(&fx), Some(&art("agg-0-1")));
    assert_eq!(l.stats().repairs, 1);
    // Not forever: after max_attempts repairs wrap gives up, naming why.
    for _ in 0..2 {
        let r = published(&l.on_wrap_input_unusable(&art("seg-0").uri, Some(0), "missing", t0)).remove(0);
        assert!(wrapped(&l.on_results(vec![done(&r)], t0)).is_some());
    }
    let fx = l.on_wrap_input_unusable(&art("seg-0").uri, Some(0), "missing", t0);
    let Some(Failure::TaskFailed { task, message, .. }) = failure(&fx) else { panic!("{fx:?}") };
    assert_eq!(task, "wrap");
    assert!(message.contains("repaired 3 time(s)"), "{message}");
}

#[test]
fn a_plan_payload_cannot_be_repaired() {
    let t0 = Instant::now();
    let (mut l, segs) = started(1, t0);
    let bad = Outcome::CorruptInput { uri: art("seg-0.in").uri, message: "digest mismatch".into() };
    let fx = l.on_results(vec![result(&segs[0], bad)], t0);
    let Some(Failure::TaskFailed { message, .. }) = failure(&fx) else { panic!("{fx:?}") };
    assert!(message.contains("cannot be recomputed"), "{message}");
}

fn record(task: &str, start: u32, end: u32, children: &[&str]) -> Record {
    Record {
        task: task.into(),
        start,
        end,
        depth: (end - start).next_power_of_two().trailing_zeros(),
        artifact: art(task),
        children: children.iter().map(|c| c.to_string()).collect(),
        attempt: 1,
    }
}

#[test]
fn resume_dispatches_only_the_unfinished_and_knows_pre_crash_producers() {
    let t0 = Instant::now();
    let mut l = ledger(4);
    let records = vec![
        record("seg-0", 0, 1, &[]),
        record("seg-1", 1, 2, &[]),
        record("agg-0-1", 0, 2, &["seg-0", "seg-1"]),
        record("seg-2", 2, 3, &[]),
        // Out of the plan's range: ignored, not trusted.
        record("seg-9", 9, 10, &[]),
    ];
    let fx = l.start(records, t0);
    // agg-0-1 and seg-2 are adjacent finished ranges: they fold at once.
    let out = published(&fx);
    assert_eq!(out.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["agg-0-2", "seg-3"]);
    assert_eq!(out[0].inputs, vec![art("agg-0-1"), art("seg-2")]);
    assert_eq!(l.stats().resumed_segments, 3);
    // A pre-crash artifact is corrupt: its producer (known from the journal) runs
    // again with the inputs the journal recorded ...
    let bad = Outcome::CorruptInput { uri: art("agg-0-1").uri, message: "digest mismatch".into() };
    let repair = published(&l.on_results(vec![result(&out[0], bad)], t0)).remove(0);
    assert_eq!((repair.id.as_str(), repair.inputs.clone()), ("agg-0-1", vec![art("seg-0"), art("seg-1")]));
    // ... and a pre-crash segment, missing, gets its payload from the manifest.
    let bad = Outcome::CorruptInput { uri: art("seg-1").uri, message: "missing".into() };
    let again = published(&l.on_results(vec![result(&repair, bad)], t0)).remove(0);
    assert_eq!((again.id.as_str(), again.inputs[0].uri.as_str()), ("seg-1", art("seg-1.in").uri.as_str()));
    // The chain unwinds: seg-1, then agg-0-1, then agg-0-2 goes out again.
    let fx = l.on_results(vec![done(&again)], t0);
    let repair2 = published(&fx).remove(0);
    assert_eq!((repair2.id.as_str(), repair2.attempt), ("agg-0-1", 3));
    let fx = l.on_results(vec![done(&repair2)], t0);
    assert_eq!(published(&fx)[0].id, "agg-0-2");
    assert_eq!(l.stats().repairs, 2);
}

#[test]
fn a_fully_journalled_job_wraps_at_once() {
    let mut l = ledger(2);
    let records = vec![
        record("seg-0", 0, 1, &[]),
        record("seg-1", 1, 2, &[]),
        record("agg-0-1", 0, 2, &["seg-0", "seg-1"]),
    ];
    let fx = l.start(records, Instant::now());
    assert_eq!(wrapped(&fx), Some(&art("agg-0-1")));
    assert!(published(&fx).is_empty());
}

#[test]
fn aggregations_journal_their_children_and_one_without_them_is_not_recomputed() {
    let t0 = Instant::now();
    let (mut l, _, agg) = corrupt_setup(t0);
    let fx = l.on_results(vec![done(&agg)], t0);
    let journalled: Vec<&Record> =
        fx.iter().filter_map(|e| if let Effect::Journal(r) = e { Some(r) } else { None }).collect();
    assert_eq!(journalled[0].children, ["seg-0", "seg-1"]);

    // An older journal's aggregation, without children: its loss is fatal, and says why.
    let mut l = ledger(3);
    let records = vec![record("seg-0", 0, 1, &[]), record("seg-1", 1, 2, &[]), record("agg-0-1", 0, 2, &[])];
    let seg2 = published(&l.start(records, t0)).remove(0);
    let root = published(&l.on_results(vec![done(&seg2)], t0)).remove(0);
    let bad = Outcome::CorruptInput { uri: art("agg-0-1").uri, message: "missing".into() };
    let fx = l.on_results(vec![result(&root, bad)], t0);
    let Some(Failure::TaskFailed { message, .. }) = failure(&fx) else { panic!("{fx:?}") };
    assert!(message.contains("does not say what agg-0-1 folded"), "{message}");
}

#[test]
fn ready_tasks_wait_for_the_window_and_aggregations_go_first() {
    let t0 = Instant::now();
    let mut l = ledger(4);
    assert!(published(&l.0.start(Vec::new(), t0)).is_empty(), "nothing goes out unasked");
    assert_eq!(l.outstanding(), (4, 0, 10 + 11 + 12 + 13, 0));
    let first = published(&l.release(2, t0));
    assert_eq!(l.outstanding(), (2, 2, 12 + 13, 10 + 11));
    assert_eq!(first.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(), ["seg-0", "seg-1"]);
    // A queued task has no deadline: only what is out can go silent.
    let resent = published(&l.0.on_tick(t0 + SILENCE * 5));
    assert_eq!(resent.len(), 2, "only the two out are re-sent");
    let mut beat = result(&resent[1], Outcome::Running);
    beat.exec_micros = 2_000_000;
    l.0.on_results(vec![beat], t0 + SILENCE * 5 + Duration::from_secs(3));
    assert_eq!(
        l.take_waits(),
        [(TaskKind::Segment, Duration::from_secs(1))],
        "re-sent at 5 silences, ran from +1 s"
    );
    let fx = l.0.on_results(vec![done(&resent[0]), done(&resent[1])], t0);
    assert!(published(&fx).is_empty());
    assert_eq!(l.outstanding(), (3, 0, 1 + 12 + 13, 0), "agg-0-1 (cost 1) is ready");
    // agg-0-1 was made ready after seg-2 and seg-3, but goes out before them.
    let next = published(&l.release(1, t0));
    assert_eq!(next[0].id, "agg-0-1");
    assert_eq!(l.ready_len(), 2);
}

#[test]
fn the_timeline_has_a_span_for_every_attempt_that_ended() {
    let t0 = Instant::now();
    let (mut l, segs) = started(2, t0);
    let mut slow = result(&segs[0], Outcome::Failed { message: "oom".into(), retryable: true });
    slow.exec_micros = 3_000_000;
    let retried = published(&l.on_results(vec![slow], t0 + Duration::from_secs(4))).remove(0);
    let mut ok = done(&retried);
    ok.exec_micros = 1_000_000;
    ok.ran_on = "w/1".into();
    let agg = published(&l.on_results(vec![ok, done(&segs[1])], t0 + Duration::from_secs(6))).remove(0);
    l.on_results(vec![done(&segs[1]), done(&agg)], t0 + Duration::from_secs(7));
    let spans = l.spans();
    let summary: Vec<_> = spans.iter().map(|s| (s.task.as_str(), s.attempt, s.outcome)).collect();
    assert_eq!(
        summary,
        [
            ("seg-0", 1, SpanEnd::Failed),
            ("seg-0", 2, SpanEnd::Done),
            ("seg-1", 1, SpanEnd::Done),
            ("seg-1", 1, SpanEnd::Duplicate),
            ("agg-0-1", 1, SpanEnd::Done),
        ]
    );
    assert_eq!((spans[0].start, spans[0].finish), (Duration::from_secs(1), Duration::from_secs(4)));
    assert_eq!((spans[1].start, spans[1].lane.as_str()), (Duration::from_secs(5), "w/1"));
}

mod memory;
