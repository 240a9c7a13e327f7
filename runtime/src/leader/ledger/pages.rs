//! Pages of the plan's segments: loaded before their segments go out, let go once
//! every segment on them went out and came back.
//!
//! 1. [`JobLedger::release`] takes a segment only from a loaded page. At the first
//!    segment of a page not loaded it stops and emits [`Effect::LoadSegments`]; past the
//!    middle of a page it asks for the next one, so dispatch does not wait for the store.
//! 2. [`JobLedger::on_segments`] takes the page in; the actor releases again.
//! 3. A page is let go when no segment of it is out and none is left to release. A
//!    repair of a segment on a page let go loads it again first (see `repair`).
//!
//! A plan of one page (at most `SEGMENTS_PER_PART` segments) is held for good.

use std::time::Instant;

use super::{Effect, Failure, JobLedger};
use crate::leader::segments::SegmentTable;

impl JobLedger {
    /// The page of the plan's segments asked for, read back from the store.
    pub fn on_segments(&mut self, page: usize, table: SegmentTable, now: Instant) -> Vec<Effect> {
        self.loading.remove(&page);
        if self.over {
            return Vec::new();
        }
        if !self.segments.load(page, table) {
            let message = format!(
                "page {page} of the plan's segments, read back from the store, is not the plan's \
                 (other segments or costs): the job's manifest parts were changed"
            );
            return self.settle(vec![Effect::Fail(Failure::TaskFailed {
                task: "plan".into(),
                attempts: 1,
                message,
            })]);
        }
        let mut fx = Vec::new();
        self.retry_recalling(now, &mut fx);
        self.settle(fx)
    }

    /// Pages of segments held now (for tests and the memory it stands for).
    pub fn pages_held(&self) -> usize {
        self.segments.loaded()
    }

    /// The next segment to release, if its page is loaded (asking for it, or for the
    /// next one past this page's middle).
    pub(super) fn next_todo_loaded(&mut self, fx: &mut Vec<Effect>) -> Option<u32> {
        let i = self.todo.front()?.0 as usize;
        let page = self.segments.page_of(i);
        if !self.segments.is_loaded(page) {
            self.ask_for_page(page, fx);
            return None;
        }
        let range = self.segments.page_range(page);
        if i >= range.start + range.len() / 2 && page + 1 < self.segments.pages() {
            self.ask_for_page(page + 1, fx);
        }
        self.next_todo()
    }

    /// Emit [`Effect::LoadSegments`] for `page` unless it is loaded or asked for.
    pub(super) fn ask_for_page(&mut self, page: usize, fx: &mut Vec<Effect>) {
        if !self.segments.is_loaded(page) && self.loading.insert(page) {
            fx.push(Effect::LoadSegments(page));
        }
    }

    /// Segment `i` went out.
    pub(super) fn segment_out(&mut self, i: u32) {
        *self.out_on_page.entry(self.segments.page_of(i as usize)).or_default() += 1;
    }

    /// Segment `i` came back: let its page go if nothing on it is out or left to release.
    pub(super) fn segment_back(&mut self, i: u32) {
        let page = self.segments.page_of(i as usize);
        let Some(out) = self.out_on_page.get_mut(&page) else { return };
        *out -= 1;
        if *out > 0 {
            return;
        }
        self.out_on_page.remove(&page);
        let range = self.segments.page_range(page);
        let released = self.todo.iter().all(|&(a, b)| b as usize <= range.start || a as usize >= range.end);
        if released {
            self.segments.unload(page);
        }
    }
}
