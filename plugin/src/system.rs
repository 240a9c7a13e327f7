//! [`ProofSystem`]: the six calls the runtime makes into a proof system.

use std::time::Duration;

use crate::{ExecCx, JobMeta, Plan, PlanOptions, PluginError, PluginId, Verdict};

/// Which step of a job a worker task is, for [`ProofSystem::task_timeout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StepKind {
    /// Prove one segment.
    Segment,
    /// Fold two adjacent proofs.
    Aggregate,
}

/// A proof system, registered by name in leader and worker builds.
///
/// ```
/// use proofline_plugin::*;
///
/// /// Proves nothing: each segment's "proof" is its payload; folding concatenates.
/// struct Concat;
/// impl ProofSystem for Concat {
///     fn id(&self) -> PluginId { PluginId::new("concat", "1") }
///     fn plan(&self, input: &[u8], _: &PlanOptions) -> Result<Plan, PluginError> {
///         let segments = input.iter().map(|b| SegmentSpec { payload: vec![*b], cost: 1 }).collect();
///         Ok(Plan { segments, meta: vec![], summary: format!("{} bytes", input.len()), name: "concat".into() })
///     }
///     fn prove_segment(&self, _: &mut ExecCx, seg: &[u8]) -> Result<Vec<u8>, PluginError> {
///         Ok(seg.to_vec())
///     }
///     fn aggregate(&self, _: &mut ExecCx, l: &[u8], r: &[u8]) -> Result<Vec<u8>, PluginError> {
///         Ok([l, r].concat())
///     }
///     fn wrap(&self, _: &mut ExecCx, root: &[u8], _: &JobMeta) -> Result<Vec<u8>, PluginError> {
///         Ok(root.to_vec())
///     }
///     fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError> {
///         Ok(Verdict::Valid { statement: format!("{} bytes", proof.len()) })
///     }
/// }
/// let plan = Concat.plan(b"abc", &PlanOptions::default()).unwrap();
/// assert_eq!(plan.segments.len(), 3);
/// ```
pub trait ProofSystem: Send + Sync + 'static {
    fn id(&self) -> PluginId;
    /// Leader: parse and validate the input, split it into segments. Cheap.
    fn plan(&self, input: &[u8], opts: &PlanOptions) -> Result<Plan, PluginError>;
    /// Worker: prove one segment.
    fn prove_segment(&self, cx: &mut ExecCx, segment: &[u8]) -> Result<Vec<u8>, PluginError>;
    /// Worker: fold two adjacent proofs (`left` covers the range just before `right`).
    fn aggregate(&self, cx: &mut ExecCx, left: &[u8], right: &[u8]) -> Result<Vec<u8>, PluginError>;
    /// Leader: turn the proof covering all segments into the final proof.
    fn wrap(&self, cx: &mut ExecCx, root: &[u8], job: &JobMeta) -> Result<Vec<u8>, PluginError>;
    /// Anyone: check a final proof produced by `wrap`.
    fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError>;
    /// Leader: the longest one attempt of a task of this kind and cost may run before
    /// it is abandoned and sent again (an operator's `--task-timeout-secs` overrides
    /// it). Generous: a slow machine must not be mistaken for a hung plugin.
    fn task_timeout(&self, kind: StepKind, cost: u64) -> Duration {
        let _ = (kind, cost);
        Duration::from_secs(3600)
    }
}
