//! The seam between the Proofline runtime and a proof system.
//!
//! A [`ProofSystem`] turns a job's input into a [`Plan`] of segments (on the leader),
//! proves segments and folds adjacent proofs (on workers), wraps the root proof (on the
//! leader) and verifies final proofs. The runtime never looks inside the bytes.
//!
//! This crate is deliberately tiny (serde, postcard and thiserror): a plugin depends on
//! it, not on the runtime with its broker, store and actor dependencies. [`codec`] is one
//! shared, versioned encoding for a plugin's payloads and artifacts; [`typed`] lets a
//! plugin work on its own types and erases them to bytes with it.

pub mod codec;
mod error;
mod exec;
mod id;
mod plan;
mod system;
pub mod typed;

pub use error::{PluginError, Verdict};
pub use exec::{ExecCx, JobMeta, LaneDevice, LeafSource};
pub use id::PluginId;
pub use plan::{Plan, PlanOptions, SegmentSpec, Segments, SegmentsIntoIter};
pub use system::{ProofSystem, StepKind};
