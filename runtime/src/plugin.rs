//! The plugin API, as the runtime sees it: the seam itself lives in the small
//! [`proofline_plugin`] crate (re-exported here whole), and this module adds the
//! [`PluginRegistry`] that leader and worker builds fill.

use std::collections::HashMap;
use std::sync::Arc;

pub use proofline_plugin::*;

/// Plugins known to a build, by name.
#[derive(Clone, Default)]
pub struct PluginRegistry {
    /// name -> (`name@version`, plugin)
    plugins: HashMap<String, (String, Arc<dyn ProofSystem>)>,
}

impl PluginRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, plugin: Arc<dyn ProofSystem>) -> &mut Self {
        let id = plugin.id();
        self.plugins.insert(id.name.clone(), (id.to_string(), plugin));
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn ProofSystem>> {
        self.plugins.get(name).map(|(_, p)| p.clone())
    }

    /// The plugin with exactly this `name@version`.
    pub fn get_exact(&self, id: &str) -> Option<&Arc<dyn ProofSystem>> {
        let name = id.split('@').next().unwrap_or(id);
        self.plugins.get(name).filter(|(full, _)| full == id).map(|(_, p)| p)
    }

    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<_> = self.plugins.keys().cloned().collect();
        names.sort();
        names
    }
}
