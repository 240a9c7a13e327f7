//! [`KeccakPlugin`]: the `ProofSystem` implementation tying the modules together.

use std::time::Instant;

use proofline_plugin::{
    ExecCx, JobMeta, LaneDevice, Plan, PlanOptions, PluginError, PluginId, ProofSystem, StepKind, Verdict,
};

use crate::aggregate::{AggregateError, aggregate};
use crate::artifact::{Artifact, SegmentPayload, decode, encode};
use crate::finalize::{check_final, decode_final, wrap};
use crate::leaf::prove_leaf;
use crate::plan::{DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, plan_witness};
use crate::witness::parse_block_witness;

/// Keccak-256 digests of a block's header and execution witness, proven with Plonky3.
///
/// See the crate documentation for the statement, the binding and what a final proof
/// does and does not establish.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeccakPlugin;

impl KeccakPlugin {
    /// The plugin's name in registries and task ids.
    pub const NAME: &'static str = "keccak";
}

fn cancelled(cx: &ExecCx) -> Result<(), PluginError> {
    if cx.is_cancelled() { Err(PluginError::Cancelled) } else { Ok(()) }
}

impl ProofSystem for KeccakPlugin {
    fn id(&self) -> PluginId {
        PluginId::new(Self::NAME, env!("CARGO_PKG_VERSION"))
    }

    /// About 20x what a loaded 2-core machine needs (1024 permutations prove in ~2.3 s;
    /// a CPU Vulkan driver is ~6x slower), so only a hung prover hits it.
    fn task_timeout(&self, kind: StepKind, cost: u64) -> std::time::Duration {
        let per_permutation = std::time::Duration::from_millis(50);
        match kind {
            StepKind::Segment => {
                std::time::Duration::from_secs(120) + per_permutation * cost.min(1 << 24) as u32
            }
            StepKind::Aggregate => std::time::Duration::from_secs(300),
        }
    }

    fn plan(&self, input: &[u8], opts: &PlanOptions) -> Result<Plan, PluginError> {
        let witness = parse_block_witness(input).map_err(|e| PluginError::bad_input(e.to_string()))?;
        let size = opts.segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE);
        plan_witness(&witness, size).map_err(PluginError::bad_input)
    }

    fn prove_segment(&self, cx: &mut ExecCx, segment: &[u8]) -> Result<Vec<u8>, PluginError> {
        cancelled(cx)?;
        let payload: SegmentPayload = decode(segment, "segment payload").map_err(PluginError::permanent)?;
        let n = payload.blocks.len() as u64;
        if n == 0 || n > MAX_SEGMENT_SIZE {
            return Err(PluginError::permanent(format!(
                "segment payload: {n} permutations, outside 1..={MAX_SEGMENT_SIZE}"
            )));
        }
        let started = Instant::now();
        let gpu = match cx.device {
            LaneDevice::Cpu => None,
            LaneDevice::Gpu(n) => Some(proofline_shaders::adapters().get(n).ok_or_else(|| {
                PluginError::permanent(format!(
                    "lane {} names GPU adapter {n}, which this process lacks",
                    cx.lane
                ))
            })?),
        };
        let before = gpu.map(|g| g.counters());
        let leaf = prove_leaf(&payload, gpu)
            .map_err(|e| PluginError::permanent(format!("segment {}: {e}", payload.segment)))?;
        let seconds = started.elapsed().as_secs_f64();
        let (segment, permutations, proof_bytes) = (payload.segment, payload.blocks.len(), leaf.proof.len());
        match gpu.zip(before) {
            // Whether a GPU lane really used its device is worth a line per segment.
            Some((gpu, before)) => tracing::info!(
                task = %cx.task, segment, permutations, proof_bytes, seconds,
                "keccak segment proven on {}: gpu kernels: {}", gpu.name(), gpu.counters().since(&before)
            ),
            None => tracing::debug!(
                task = %cx.task, segment, permutations, proof_bytes, seconds, "keccak segment proven"
            ),
        }
        cancelled(cx)?;
        Ok(encode(&Artifact::Leaf(leaf)))
    }

    fn aggregate(&self, cx: &mut ExecCx, left: &[u8], right: &[u8]) -> Result<Vec<u8>, PluginError> {
        cancelled(cx)?;
        aggregate(left, right).map_err(|e| match e {
            AggregateError::Malformed(m) | AggregateError::Rejected(m) => PluginError::permanent(m),
        })
    }

    fn wrap(&self, cx: &mut ExecCx, root: &[u8], job: &JobMeta) -> Result<Vec<u8>, PluginError> {
        cancelled(cx)?;
        wrap(root, job.meta, job.leaves)
    }

    fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError> {
        let proof = decode_final(proof).map_err(PluginError::bad_input)?;
        Ok(match check_final(&proof, true) {
            Ok(statement) => Verdict::Valid { statement },
            Err(reason) => Verdict::Invalid { reason },
        })
    }
}
