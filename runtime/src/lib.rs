//! Proofline runtime: the task model, the plugin API, the leader and worker actors,
//! transports and artifact stores.

pub mod plugin;
