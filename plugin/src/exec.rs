//! What a plugin sees while it runs: the lane's [`ExecCx`] and, for `wrap`, the job's
//! [`JobMeta`] with its leaves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::PluginError;

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
