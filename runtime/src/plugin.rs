//! The plugin API: the seam between the runtime and a proof system.
//!
//! A [`ProofSystem`] turns a job's input into a [`Plan`] of segments (on the leader),
//! proves segments and folds adjacent proofs (on workers), wraps the root proof (on
//! the leader) and verifies final proofs. The runtime never looks inside the bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A proof system's name and version, e.g. `keccak@0.1.0`.
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

/// Options the leader passes to [`ProofSystem::plan`].
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Upper bound on one segment's cost, in the plugin's own unit
    /// (Keccak-f permutations for `keccak`). `None`: the plugin's default.
    pub segment_size: Option<u64>,
}

/// One segment of a plan: an opaque payload for [`ProofSystem::prove_segment`].
#[derive(Clone, Debug)]
pub struct SegmentSpec {
    pub payload: Vec<u8>,
    /// Cost estimate in the plugin's unit; used for scheduling and progress.
    pub cost: u64,
}

/// The result of planning a job: ordered segments `0..n` and what `wrap` needs.
#[derive(Clone, Debug)]
pub struct Plan {
    pub segments: Vec<SegmentSpec>,
    /// Opaque job statement handed to [`ProofSystem::wrap`] (e.g. the block header).
    pub meta: Vec<u8>,
    /// One line for humans: what is being proven.
    pub summary: String,
    /// A short, file-name-safe name for what is proven (`[A-Za-z0-9._-]`, e.g. the
    /// keccak plugin's `<block number>-<hash prefix>`): `batch` names proof files after it.
    pub name: String,
}

impl Plan {
    /// Whether `name` is a usable [`Plan::name`]: 1 to 96 characters of
    /// `[A-Za-z0-9._-]`, not starting with a dot.
    pub fn is_valid_name(name: &str) -> bool {
        (1..=96).contains(&name.len())
            && !name.starts_with('.')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }
}

/// Read access to the leaf (segment) artifacts of a finished job, for `wrap`.
pub trait LeafSource: Send + Sync {
    fn leaf_count(&self) -> u32;
    fn leaf(&self, index: u32) -> Result<Vec<u8>, PluginError>;
}

/// What `wrap` knows about the job.
pub struct JobMeta<'a> {
    pub job: &'a str,
    pub meta: &'a [u8],
    pub leaves: &'a dyn LeafSource,
}

/// The compute device a lane drives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LaneDevice {
    /// The CPU: the plugin's CPU prover.
    #[default]
    Cpu,
    /// GPU adapter number `n` of this process (in the order the worker listed them at
    /// start-up): the plugin runs its GPU kernels there.
    Gpu(usize),
}

/// A plugin's view of the lane it runs on.
#[derive(Clone, Debug, Default)]
pub struct ExecCx {
    /// Deterministic id of the task being run (`seg-3`, `agg-0-7`, `wrap`).
    pub task: String,
    /// Which lane of the worker runs it.
    pub lane: usize,
    /// The device that lane drives.
    pub device: LaneDevice,
    cancel: Arc<AtomicBool>,
}

impl ExecCx {
    pub fn new(task: impl Into<String>, lane: usize, cancel: Arc<AtomicBool>) -> Self {
        Self { task: task.into(), lane, device: LaneDevice::Cpu, cancel }
    }

    /// The same context on `device`.
    pub fn on(self, device: LaneDevice) -> Self {
        Self { device, ..self }
    }

    /// True once the runtime wants this task abandoned (job cancelled, lane stopping).
    /// Long-running plugins poll it and return [`PluginError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Why a plugin call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The job's input (or a proof handed to `verify`) is malformed: the message says
    /// what and where. Never retried; the CLI exits with code 2.
    #[error("{0}")]
    BadInput(String),
    /// The task failed. `retryable` failures are re-dispatched until attempts run out.
    #[error("{message}")]
    Failed { message: String, retryable: bool },
    /// The task noticed [`ExecCx::is_cancelled`].
    #[error("cancelled")]
    Cancelled,
}

impl PluginError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Failed { message: message.into(), retryable: true }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Failed { message: message.into(), retryable: false }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Failed { retryable: true, .. })
    }
}

/// The outcome of verifying a final proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The proof verifies; `statement` says, for humans, what it establishes.
    Valid { statement: String },
    /// The proof is well-formed but does not verify.
    Invalid { reason: String },
}

/// A proof system, registered by name in leader and worker builds.
///
/// ```
/// use proofline_runtime::plugin::*;
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
    fn task_timeout(&self, kind: crate::task::TaskKind, cost: u64) -> std::time::Duration {
        let _ = (kind, cost);
        std::time::Duration::from_secs(3600)
    }
}

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
