//! Which adapters a process runs GPU lanes on: `--gpu auto|off|required`.
//!
//! Adapters are opened once per process and listed hardware first, so "lane device
//! `Gpu(n)`" means `adapters()[n]` in the worker and in the plugin alike. A process whose
//! first call is `lane_adapters(Auto)` opens hardware adapters only: a CPU driver it
//! would never run lanes on is not opened (lavapipe's device holds about 70 MB).

use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use crate::counters::GpuCounters;
use crate::gpu::{Gpu, GpuError};

/// The `--gpu` policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuMode {
    /// One GPU lane per hardware adapter; none (CPU only) when there is none. CPU
    /// drivers such as lavapipe are never picked: they are slower than the CPU prover.
    #[default]
    Auto,
    /// CPU lanes only.
    Off,
    /// Like `auto`, but fall back to a CPU Vulkan driver when there is no hardware
    /// adapter, and fail when there is no adapter at all.
    Required,
}

impl FromStr for GpuMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            "required" => Ok(Self::Required),
            other => Err(format!("--gpu must be auto, off or required, not {other:?}")),
        }
    }
}

impl std::fmt::Display for GpuMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Off => "off",
            Self::Required => "required",
        })
    }
}

static ADAPTERS: OnceLock<Vec<Arc<Gpu>>> = OnceLock::new();

/// Every adapter of this process, hardware first (opened on first call).
pub fn adapters() -> &'static [Arc<Gpu>] {
    ADAPTERS.get_or_init(Gpu::all)
}

/// The counters of every adapter [`adapters()`] opened, summed: what the process's GPU
/// lanes ran and where they fell back to the CPU. `None` when no adapter was opened (never
/// asked for, or none found); never opens one itself.
pub fn opened_counters() -> Option<GpuCounters> {
    ADAPTERS.get().filter(|all| !all.is_empty()).map(|all| all.iter().map(|g| g.counters()).sum())
}

/// The adapters to run lanes on under `mode`: always a prefix of [`adapters()`].
///
/// ```no_run
/// use proofline_shaders::{GpuMode, lane_adapters};
/// for gpu in lane_adapters(GpuMode::Auto).unwrap() {
///     println!("GPU lane on {}", gpu.describe());
/// }
/// ```
pub fn lane_adapters(mode: GpuMode) -> Result<&'static [Arc<Gpu>], GpuError> {
    let all = match mode {
        // Off never touches the Vulkan loader.
        GpuMode::Off => &[],
        GpuMode::Auto => &ADAPTERS.get_or_init(Gpu::hardware)[..],
        GpuMode::Required => adapters(),
    };
    let hardware = &all[..all.iter().take_while(|g| g.is_hardware()).count()];
    match mode {
        GpuMode::Off | GpuMode::Auto => Ok(hardware),
        GpuMode::Required if !hardware.is_empty() => Ok(hardware),
        GpuMode::Required if !all.is_empty() => Ok(all),
        GpuMode::Required => Err(GpuError::NoAdapter),
    }
}
