//! Typed proof systems: a plugin written against its own payload types, erased to the
//! runtime's bytes by [`Erased`] with the shared [`Codec`].
//!
//! [`ProofSystem`] speaks bytes so that the runtime can store, ship and resume anything
//! and so that the `exec` plugin can hand opaque files around. A Rust plugin rarely
//! wants bytes: with [`TypedProofSystem`] it names its segment, proof, statement and
//! final-proof types once, and every encode, decode and "this is not a leaf" check lives
//! in this adapter instead of in each plugin.

use std::marker::PhantomData;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::{
    ExecCx, JobMeta, LeafSource, Plan, PlanOptions, PluginError, PluginId, ProofSystem, SegmentSpec,
    StepKind, Verdict,
};

/// A plan in the plugin's own types.
pub struct TypedPlan<S, M> {
    /// Each segment and its cost, in order.
    pub segments: Vec<(S, u64)>,
    pub meta: M,
    pub summary: String,
    pub name: String,
}

/// A proof system over its own payload types; register it as `Erased(plugin)`.
pub trait TypedProofSystem: Send + Sync + 'static {
    /// One segment's work: made by `plan`, proven by `prove_segment`.
    type Segment: Serialize + DeserializeOwned;
    /// A proof of a range of segments: made by `prove_segment` and `aggregate`.
    type Proof: Serialize + DeserializeOwned;
    /// The job's statement: made by `plan`, read by `wrap`.
    type Meta: Serialize + DeserializeOwned;
    /// The final proof: made by `wrap`, read by `verify`.
    type Final: Serialize + DeserializeOwned;
    /// The encoding of all four; bump its version on any incompatible change.
    const CODEC: Codec;

    fn id(&self) -> PluginId;
    fn plan(
        &self,
        input: &[u8],
        opts: &PlanOptions,
    ) -> Result<TypedPlan<Self::Segment, Self::Meta>, PluginError>;
    fn prove_segment(&self, cx: &mut ExecCx, segment: Self::Segment) -> Result<Self::Proof, PluginError>;
    fn aggregate(
        &self,
        cx: &mut ExecCx,
        left: Self::Proof,
        right: Self::Proof,
    ) -> Result<Self::Proof, PluginError>;
    fn wrap(
        &self,
        cx: &mut ExecCx,
        root: Self::Proof,
        meta: Self::Meta,
        leaves: &TypedLeaves<'_, Self::Proof>,
    ) -> Result<Self::Final, PluginError>;
    fn verify(&self, proof: Self::Final) -> Result<Verdict, PluginError>;
    /// As [`ProofSystem::task_timeout`].
    fn task_timeout(&self, kind: StepKind, cost: u64) -> Duration {
        let _ = (kind, cost);
        Duration::from_secs(3600)
    }
}

/// The segment proofs of a finished job, decoded on demand (for `wrap`).
pub struct TypedLeaves<'a, P> {
    source: &'a dyn LeafSource,
    job: &'a str,
    codec: Codec,
    proof: PhantomData<fn() -> P>,
}

impl<P: DeserializeOwned> TypedLeaves<'_, P> {
    pub fn len(&self) -> u32 {
        self.source.leaf_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The job's id.
    pub fn job(&self) -> &str {
        self.job
    }

    /// Segment `index`'s proof; a store failure keeps its own (maybe retryable) error.
    pub fn get(&self, index: u32) -> Result<P, PluginError> {
        let bytes = self.source.leaf(index)?;
        artifact(self.codec, &bytes, &format!("leaf {index}"))
    }
}

/// A [`TypedProofSystem`] as the runtime's [`ProofSystem`].
pub struct Erased<T>(pub T);

/// Artifacts come from this plugin's own steps (and passed the store's checksum): bytes
/// that do not decode are another build's, a permanent failure.
fn artifact<V: DeserializeOwned>(codec: Codec, bytes: &[u8], what: &str) -> Result<V, PluginError> {
    codec.decode(bytes, what).map_err(|e| PluginError::permanent(e.to_string()))
}

impl<T: TypedProofSystem> ProofSystem for Erased<T> {
    fn id(&self) -> PluginId {
        self.0.id()
    }

    fn plan(&self, input: &[u8], opts: &PlanOptions) -> Result<Plan, PluginError> {
        let plan = self.0.plan(input, opts)?;
        let segments = plan
            .segments
            .iter()
            .map(|(segment, cost)| SegmentSpec { payload: T::CODEC.encode(segment), cost: *cost })
            .collect();
        Ok(Plan { segments, meta: T::CODEC.encode(&plan.meta), summary: plan.summary, name: plan.name })
    }

    fn prove_segment(&self, cx: &mut ExecCx, segment: &[u8]) -> Result<Vec<u8>, PluginError> {
        let segment = artifact(T::CODEC, segment, "segment payload")?;
        Ok(T::CODEC.encode(&self.0.prove_segment(cx, segment)?))
    }

    fn aggregate(&self, cx: &mut ExecCx, left: &[u8], right: &[u8]) -> Result<Vec<u8>, PluginError> {
        let (left, right) =
            (artifact(T::CODEC, left, "left proof")?, artifact(T::CODEC, right, "right proof")?);
        Ok(T::CODEC.encode(&self.0.aggregate(cx, left, right)?))
    }

    fn wrap(&self, cx: &mut ExecCx, root: &[u8], job: &JobMeta) -> Result<Vec<u8>, PluginError> {
        let root = artifact(T::CODEC, root, "root proof")?;
        let meta = artifact(T::CODEC, job.meta, "job meta")?;
        let leaves = TypedLeaves { source: job.leaves, job: job.job, codec: T::CODEC, proof: PhantomData };
        Ok(T::CODEC.encode(&self.0.wrap(cx, root, meta, &leaves)?))
    }

    /// A final proof comes from outside: bytes that do not decode are bad input.
    fn verify(&self, proof: &[u8]) -> Result<Verdict, PluginError> {
        let proof =
            T::CODEC.decode(proof, "final proof").map_err(|e| PluginError::bad_input(e.to_string()))?;
        self.0.verify(proof)
    }

    fn task_timeout(&self, kind: StepKind, cost: u64) -> Duration {
        self.0.task_timeout(kind, cost)
    }
}
