//! What the ledger holds as a job runs: the fold's frontier of finished tasks and a few
//! pages of a large plan, with everything let go read back when a repair needs it.

use super::*;

/// Every task `fx` publishes, and those published once what it asks for is read back.
fn resolved(l: &mut Eager, fx: Vec<Effect>, t0: Instant) -> Vec<Task> {
    let mut tasks = published(&fx);
    let mut more = l.read_back(&fx, t0);
    while !more.is_empty() {
        tasks.extend(published(&more));
        more = l.read_back(&more, t0);
    }
    tasks
}

/// Run `l`'s segments to the root with at most `window` tasks out (as the leader's
/// dispatch window does), results in publish order; returns the ledger, the largest
/// number of finished tasks and of pages it held on the way, and the root task.
fn fold_to_root(mut l: Eager, window: usize, t0: Instant) -> (Eager, usize, usize, Task) {
    let fx = l.0.start(Vec::new(), t0);
    let mut out: std::collections::VecDeque<Task> = resolved(&mut l, fx, t0).into();
    let (mut most, mut pages) = (0, 0);
    loop {
        // Release until the window is full (pages read back on the way).
        loop {
            let fx = l.0.release(window - l.in_flight(), t0);
            if fx.is_empty() {
                break;
            }
            out.extend(resolved(&mut l, fx, t0));
        }
        let Some(task) = out.pop_front() else { panic!("the job did not fold to a root") };
        if task.kind == TaskKind::Segment {
            assert_eq!(task.inputs, [art(&format!("{}.in", task.id))], "{} got its own payload", task.id);
        }
        let fx = l.0.on_results(vec![done(&task)], t0);
        (most, pages) = (most.max(l.held()), pages.max(l.pages_held()));
        if wrapped(&fx).is_some() {
            l.read_back(&fx, t0);
            return (l, most, pages, task);
        }
        out.extend(resolved(&mut l, fx, t0));
    }
}

fn folded(n: u32, window: usize, t0: Instant) -> (Eager, usize, Task) {
    let (l, most, _, root) = fold_to_root(ledger(n), window, t0);
    (l, most, root)
}

#[test]
fn a_large_plan_is_held_a_few_pages_at_a_time() {
    let t0 = Instant::now();
    let (l, _, pages, root) = fold_to_root(paged(50), 3, t0);
    assert_eq!(root.id, "agg-0-49");
    assert!(pages <= 2, "held {pages} pages of 4 segments at once (13 in the plan)");
    assert_eq!(l.pages_held(), 0, "every page let go once its segments came back");
}

#[test]
fn a_segment_on_a_page_let_go_is_repaired_with_its_own_payload() {
    let t0 = Instant::now();
    let (mut l, _, _, _) = fold_to_root(paged(10), 2, t0);
    let fx = l.0.on_wrap_input_unusable(&art("seg-5").uri, Some(5), "artifact missing", t0);
    assert_eq!(fx, [Effect::Recall(vec![(5, 6)])]);
    let fx = l.0.on_recalled(l.1.iter().filter(|r| r.task == "seg-5").cloned().collect(), t0);
    assert_eq!(fx, [Effect::LoadSegments(1)], "its page is read back before it goes out");
    let repair = published(&l.all(fx, t0)).remove(0);
    assert_eq!((repair.id.as_str(), repair.inputs.clone()), ("seg-5", vec![art("seg-5.in")]));
    assert!(wrapped(&l.on_results(vec![done(&repair)], t0)).is_some());
    assert_eq!(l.pages_held(), 0);
}

#[test]
fn a_page_that_comes_back_changed_fails_the_job() {
    let t0 = Instant::now();
    let mut l = paged(10);
    assert!(l.0.start(Vec::new(), t0).is_empty());
    let fx = l.0.release(4, t0);
    assert_eq!(fx, [Effect::LoadSegments(0)], "nothing goes out before its page is there");
    let wrong: SegmentTable = segment_refs(8)[4..8].iter().cloned().collect();
    let fx = l.0.on_segments(0, wrong, t0);
    let Some(Failure::TaskFailed { message, .. }) = failure(&fx) else { panic!("{fx:?}") };
    assert!(message.contains("not the plan's"), "{message}");
}

#[test]
fn the_ledger_holds_the_folds_frontier_not_the_job() {
    let t0 = Instant::now();
    let (l, most, root) = folded(1024, 16, t0);
    assert_eq!(root.id, "agg-0-1023");
    assert_eq!(l.held(), 1, "only the root");
    // What is held is what is finished and not yet folded: with 16 tasks out, at most
    // those 16's neighbours and about one range per level of the fold (10 levels).
    assert!(most <= 16 + 10, "held {most} finished tasks at once");
    assert_eq!(l.1.len(), 1024 + 1023, "every finished task is in the journal");
}

#[test]
fn a_repair_reads_back_what_the_fold_let_go() {
    let t0 = Instant::now();
    let (mut l, _, _) = folded(4, 4, t0);
    // Wrap finds seg-2 missing: its record was let go when agg-2-3 finished.
    let fx = l.0.on_wrap_input_unusable(&art("seg-2").uri, Some(2), "artifact missing", t0);
    assert_eq!(fx, [Effect::Recall(vec![(2, 3)])], "nothing goes out before the record is back");
    let fx = l.all(fx, t0);
    let repair = published(&fx).remove(0);
    assert_eq!((repair.id.as_str(), repair.attempt, repair.inputs[0].clone()), ("seg-2", 2, art("seg-2.in")));
    assert_eq!(wrapped(&l.on_results(vec![done(&repair)], t0)), Some(&art("agg-0-3")));

    // An aggregation read back needs its children too: a second recall, then it goes out.
    let fx = l.0.on_wrap_input_unusable(&art("agg-0-3").uri, None, "digest mismatch", t0);
    assert!(matches!(fx.as_slice(), [Effect::Recall(children)] if children.len() == 2), "{fx:?}");
    let repair = published(&l.all(fx, t0)).remove(0);
    assert_eq!(
        (repair.id.as_str(), repair.inputs.clone()),
        ("agg-0-3", vec![art("agg-0-1"), art("agg-2-3")])
    );
}

#[test]
fn a_record_the_journal_lost_fails_the_repair_naming_it() {
    let t0 = Instant::now();
    let (mut l, _, _) = folded(4, 4, t0);
    l.1.retain(|r| r.task != "agg-2-3");
    let fx = l.on_wrap_input_unusable(&art("agg-0-3").uri, None, "digest mismatch", t0);
    let Some(Failure::TaskFailed { task, message, .. }) = failure(&fx) else { panic!("{fx:?}") };
    assert_eq!(task, "wrap");
    assert!(
        message.contains("digest mismatch")
            && message.contains("agg-2-3, which the job journal has no record of"),
        "{message}"
    );
    assert!(l.is_over());
}

#[test]
fn a_late_success_of_a_task_folded_away_is_still_a_duplicate() {
    let t0 = Instant::now();
    let (mut l, segs) = started(4, t0);
    let aggs = published(&l.on_results(segs.iter().map(done).collect(), t0));
    l.on_results(aggs.iter().map(done).collect(), t0);
    assert!(l.held() < 4, "seg-0 was let go");
    let mut late = done(&segs[0]);
    late.attempt = 2;
    l.on_results(vec![late], t0);
    assert_eq!(l.stats().duplicates, 1);
}
