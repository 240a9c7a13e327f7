//! Wrap's inputs: the root proof and the leaves, read inline or from the store; the
//! first one found corrupt or missing is reported so the ledger can have it remade.
//!
//! The ledger does not hold the leaves (it lets finished ranges go once folded): their
//! references are read back from the job journal when wrap asks for its first leaf, so
//! a plugin whose wrap reads none pays nothing.

use std::sync::{Arc, Mutex, OnceLock};

use crate::leader::journal::JournalView;
use crate::plugin::{ExecCx, JobMeta, LeafSource, PluginError, ProofSystem};
use crate::store::{ArtifactStore, StoreError, inline};
use crate::task::ArtifactRef;

/// An input wrap could not read: its uri, the leaf's index (`None` for the root), why.
pub(super) type Unusable = (String, Option<u32>, String);

/// Wrap `root`: the proof, or the input wrap found unusable (`Err(Ok(..))`).
pub(super) fn wrap_with(
    plugin: &dyn ProofSystem,
    job: &str,
    meta: &[u8],
    root: &ArtifactRef,
    leaves: &StoreLeaves,
) -> Result<Vec<u8>, Result<Unusable, PluginError>> {
    let root_bytes = match inline::load(leaves.store.as_ref(), root) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(unusable(&e)
                .map(|(uri, message)| (uri, None, message))
                .ok_or_else(|| PluginError::permanent(format!("reading the root proof: {e}"))));
        }
    };
    let mut cx = ExecCx::new("wrap", 0, Default::default());
    plugin
        .wrap(&mut cx, &root_bytes, &JobMeta { job, meta, leaves })
        .map_err(|e| leaves.unusable.lock().expect("unusable lock").take().ok_or(e))
}

/// The segments' artifacts, read from the store; their references from the journal.
pub(super) struct StoreLeaves {
    store: Arc<dyn ArtifactStore>,
    journal: JournalView,
    n: u32,
    /// Read on the first leaf asked for.
    refs: OnceLock<Result<Vec<Option<ArtifactRef>>, String>>,
    /// The first leaf found corrupt or missing.
    unusable: Mutex<Option<Unusable>>,
}

impl StoreLeaves {
    pub fn new(store: Arc<dyn ArtifactStore>, journal: JournalView, n: u32) -> Self {
        Self { store, journal, n, refs: OnceLock::new(), unusable: Mutex::new(None) }
    }
}

/// `(uri, message)` if `e` says an artifact is corrupt or missing (so it can be remade).
fn unusable(e: &StoreError) -> Option<(String, String)> {
    match e {
        StoreError::Corrupt { uri, .. } | StoreError::NotFound { uri } => Some((uri.clone(), e.to_string())),
        _ => None,
    }
}

impl LeafSource for StoreLeaves {
    fn leaf_count(&self) -> u32 {
        self.n
    }

    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        let refs = self.refs.get_or_init(|| self.journal.leaves(self.n).map_err(|e| e.to_string()));
        let refs =
            refs.as_ref().map_err(|e| PluginError::permanent(format!("reading the job journal: {e}")))?;
        let r = refs.get(index as usize).ok_or_else(|| PluginError::permanent(format!("no leaf {index}")))?;
        let r = r.as_ref().ok_or_else(|| {
            PluginError::permanent(format!("the job journal has no record of segment {index}'s proof"))
        })?;
        inline::load(self.store.as_ref(), r).map_err(|e| {
            if let Some((uri, message)) = unusable(&e) {
                self.unusable.lock().expect("unusable lock").get_or_insert((uri, Some(index), message));
            }
            PluginError::permanent(e.to_string())
        })
    }
}
