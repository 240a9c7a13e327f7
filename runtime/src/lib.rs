//! Proofline runtime: the task model, the plugin API, the leader and worker actors,
//! transports and artifact stores.
//!
//! Follow a block through it: [`leader::Leader::prove`] publishes the plan's segment
//! tasks on a [`transport::Transport`]; a [`worker::WorkerActor`] spreads them over its
//! lanes, which run the [`plugin::ProofSystem`] and put proofs in an
//! [`store::ArtifactStore`]; results flow back to the leader's per-job actor, which
//! folds adjacent ranges ([`fold`]) and finally wraps the root proof.

pub mod embedded;
pub mod envelope;
pub mod fold;
pub mod leader;
pub mod malloc;
pub mod metrics;
pub mod plugin;
pub mod proof_file;
pub mod redact;
pub mod store;
pub mod task;
pub mod transport;
pub mod worker;

/// An error and all its sources, on one line (`what: why: root cause`).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
