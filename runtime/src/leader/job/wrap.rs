//! Wrap's inputs: the root proof and the leaves, read inline or from the store; the
//! first one found corrupt or missing is reported so the ledger can have it remade.

use std::sync::Arc;

use crate::plugin::{ExecCx, JobMeta, LeafSource, PluginError, ProofSystem};
use crate::store::{ArtifactStore, StoreError, inline};
use crate::task::ArtifactRef;

/// Wrap `root`: the proof, or the input wrap found unusable (`Err(Ok((uri, message)))`).
pub(super) fn wrap_with(
    plugin: &dyn ProofSystem,
    job: &str,
    meta: &[u8],
    root: &ArtifactRef,
    leaves: &StoreLeaves<'_>,
) -> Result<Vec<u8>, Result<(String, String), PluginError>> {
    let root_bytes = match inline::load(leaves.store.as_ref(), root) {
        Ok(bytes) => bytes,
        Err(e) => {
            return Err(
                unusable(&e).ok_or_else(|| PluginError::permanent(format!("reading the root proof: {e}")))
            );
        }
    };
    let mut cx = ExecCx::new("wrap", 0, Default::default());
    plugin
        .wrap(&mut cx, &root_bytes, &JobMeta { job, meta, leaves })
        .map_err(|e| leaves.unusable.lock().expect("unusable lock").take().ok_or(e))
}

/// The leaves' references: the ledger's own, or a copy (wrap on another thread).
pub(super) enum LeafRefs<'a> {
    Ledger(crate::leader::ledger::Leaves<'a>),
    Copied(Vec<ArtifactRef>),
}

pub(super) struct StoreLeaves<'a> {
    pub store: Arc<dyn ArtifactStore>,
    pub refs: LeafRefs<'a>,
    /// The first leaf found corrupt or missing: `(uri, message)`.
    pub unusable: std::sync::Mutex<Option<(String, String)>>,
}

/// `(uri, message)` if `e` says an artifact is corrupt or missing (so it can be remade).
fn unusable(e: &StoreError) -> Option<(String, String)> {
    match e {
        StoreError::Corrupt { uri, .. } | StoreError::NotFound { uri } => Some((uri.clone(), e.to_string())),
        _ => None,
    }
}

impl LeafSource for StoreLeaves<'_> {
    fn leaf_count(&self) -> u32 {
        match &self.refs {
            LeafRefs::Ledger(leaves) => leaves.len(),
            LeafRefs::Copied(refs) => refs.len() as u32,
        }
    }
    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError> {
        let r = match &self.refs {
            LeafRefs::Ledger(leaves) => leaves.get(index),
            LeafRefs::Copied(refs) => refs.get(index as usize),
        };
        let r = r.ok_or_else(|| PluginError::permanent(format!("no leaf {index}")))?;
        inline::load(self.store.as_ref(), r).map_err(|e| {
            if let Some(found) = unusable(&e) {
                self.unusable.lock().expect("unusable lock").get_or_insert(found);
            }
            PluginError::permanent(e.to_string())
        })
    }
}
