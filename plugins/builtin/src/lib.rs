//! The plugins this build of Proofline ships: leader and worker binaries register the
//! same set, so a task planned by one can run on the other.

use std::sync::Arc;

pub use proofline_exec::{ExecConfig, ExecPlugin, OpenError, kill_running as kill_running_exec_steps};
pub use proofline_keccak::witness::{HeaderError, zero_bin_jobs};
use proofline_runtime::plugin::PluginRegistry;

/// `keccak` (the reference prover) and `sim` (synthetic workload).
///
/// ```
/// let plugins = proofline_plugins::builtin();
/// assert_eq!(plugins.names(), ["keccak", "sim"]);
/// ```
pub fn builtin() -> PluginRegistry {
    let mut registry = PluginRegistry::new();
    registry.register(Arc::new(proofline_keccak::KeccakPlugin));
    registry.register(Arc::new(proofline_sim::SimPlugin::new()));
    registry
}

/// [`builtin`], plus `exec` running the operator's prover binary when one is given
/// (`--exec-prover`).
pub fn with_exec(exec: Option<&ExecConfig>) -> Result<PluginRegistry, OpenError> {
    let mut registry = builtin();
    if let Some(config) = exec {
        registry.register(Arc::new(ExecPlugin::open(config)?));
    }
    Ok(registry)
}
