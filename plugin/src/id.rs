//! [`PluginId`]: a proof system's name and version, as tasks and proof files carry it.

use std::fmt;

/// A proof system's name and version, e.g. `keccak@0.1.0`.
///
/// Tasks name the exact id that planned them; a worker whose plugin of that name has
/// another version refuses the task, so leader and workers never mix builds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PluginId {
    pub name: String,
    pub version: String,
}

impl PluginId {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        Self { name: name.into(), version: version.into() }
    }
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}
