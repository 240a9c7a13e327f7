//! Step 5 of the job actor: read back what the ledger let go and asks for again.

use std::time::Instant;

use super::{JobError, JobState, in_place};
use crate::leader::journal::{Journal, read_part};
use crate::leader::ledger::Effect;

/// What the ledger asked to read back (step 5).
#[derive(Default)]
pub(super) struct Asked {
    pub recall: Vec<(u32, u32)>,
    pub pages: Vec<usize>,
}

impl JobState {
    /// Step 5: read back what the ledger asked for; returns its effects and the tasks
    /// that can go out now.
    pub(super) async fn read_back(&mut self, asked: Asked) -> Result<Vec<Effect>, JobError> {
        let mut fx = Vec::new();
        if !asked.recall.is_empty()
            && let Some(view) = self.journal.as_ref().map(Journal::view)
        {
            let what = "records a repair needs";
            let records = in_place(what, move || view.recall(&asked.recall))
                .await?
                .map_err(|source| JobError::Journal { what: what.into(), source })?;
            fx.extend(self.ledger().on_recalled(records, Instant::now()));
        }
        for page in asked.pages {
            let what = format!("page {page} of the plan's segments");
            let Some(part) = self.segment_parts.get(page).cloned() else {
                return Err(JobError::Internal(format!("{what}: the manifest has no such part")));
            };
            let store = self.store.clone();
            let table = in_place(&what, move || read_part(store.as_ref(), &part))
                .await?
                .map_err(|source| JobError::Journal { what, source })?;
            fx.extend(self.ledger().on_segments(page, table, Instant::now()));
        }
        fx.extend(self.dispatch_ready(Instant::now()));
        Ok(fx)
    }
}
