//! The plugins this build of Proofline ships: leader and worker binaries register the
//! same set, so a task planned by one can run on the other.

use std::sync::Arc;

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
