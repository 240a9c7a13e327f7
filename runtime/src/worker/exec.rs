//! Running one task on a lane: fetch inputs, call the plugin, store the output (or
//! carry it inline when it is small: [`inline`]).
//! A panicking plugin fails the attempt, never the lane.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::plugin::{ExecCx, PluginError, PluginRegistry, ProofSystem};
use crate::store::{ArtifactStore, StoreError, inline};
use crate::task::{ArtifactRef, Outcome, Task, TaskKind};

#[derive(Debug, thiserror::Error)]
enum ExecError {
    #[error("{0}")]
    Plugin(#[from] PluginError),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Reading an input failed.
    #[error("{0}")]
    Input(StoreError),
    #[error("{0}")]
    Unrunnable(String),
}

impl ExecError {
    fn retryable(&self) -> bool {
        match self {
            Self::Plugin(e) => e.is_retryable(),
            Self::Store(e) | Self::Input(e) => {
                matches!(e, StoreError::Io { .. } | StoreError::Remote { transient: true, .. })
            }
            Self::Unrunnable(_) => false,
        }
    }
}

/// Find the plugin a task names (`name@version`), insisting on the exact version.
pub(crate) fn resolve(plugins: &PluginRegistry, wanted: &str) -> Result<Arc<dyn ProofSystem>, String> {
    if let Some(plugin) = plugins.get_exact(wanted) {
        return Ok(plugin.clone());
    }
    let name = wanted.split('@').next().unwrap_or(wanted);
    let plugin = plugins
        .get(name)
        .ok_or_else(|| format!("this worker has no plugin {name:?} (it has: {:?})", plugins.names()))?;
    let have = plugin.id().to_string();
    if have != wanted {
        return Err(format!(
            "task needs {wanted}, this worker has {have}: leader and workers must run the same \
             build (for exec, the same --exec-prover binary: its version is the binary's digest)"
        ));
    }
    Ok(plugin)
}

/// Run `task` to an [`Outcome`]; the output artifact is stored under `job/task-id`
/// (both checked against their patterns by the lane before it gets here).
pub(crate) fn run_task(
    plugins: &PluginRegistry,
    store: &dyn ArtifactStore,
    task: &Task,
    cx: &mut ExecCx,
) -> Outcome {
    let run = catch_unwind(AssertUnwindSafe(|| try_run(plugins, store, task, cx)));
    match run {
        Ok(Ok(artifact)) => Outcome::Done(artifact),
        Ok(Err(ExecError::Input(StoreError::Corrupt { uri, reason }))) => {
            let message = format!("input {uri} is corrupted: {reason}");
            Outcome::CorruptInput { uri, message }
        }
        Ok(Err(ExecError::Input(StoreError::NotFound { uri }))) => {
            let message = format!("input {uri} is missing from the store");
            Outcome::CorruptInput { uri, message }
        }
        Ok(Err(e)) => Outcome::Failed { retryable: e.retryable(), message: e.to_string() },
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".into());
            Outcome::Failed { message: format!("plugin panicked: {what}"), retryable: true }
        }
    }
}

fn try_run(
    plugins: &PluginRegistry,
    store: &dyn ArtifactStore,
    task: &Task,
    cx: &mut ExecCx,
) -> Result<ArtifactRef, ExecError> {
    let plugin = resolve(plugins, &task.plugin).map_err(ExecError::Unrunnable)?;
    let input = |artifact: &ArtifactRef| inline::load(store, artifact).map_err(ExecError::Input);
    let output = match (task.kind, task.inputs.as_slice()) {
        (TaskKind::Segment, [payload]) => plugin.prove_segment(cx, &input(payload)?)?,
        (TaskKind::Aggregate, [left, right]) => plugin.aggregate(cx, &input(left)?, &input(right)?)?,
        (kind, inputs) => {
            return Err(ExecError::Unrunnable(format!(
                "malformed task {}: {kind:?} with {} inputs",
                task.id,
                inputs.len()
            )));
        }
    };
    // Small outputs travel inline in the result (no store round trip).
    Ok(inline::save(store, || format!("{}/{}", task.job, task.id), &output)?)
}
