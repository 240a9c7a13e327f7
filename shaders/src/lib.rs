//! GPU compute kernels for proving, in WGSL on wgpu: BabyBear arithmetic bit-compatible
//! with Plonky3, batched NTT / coset LDE, and Poseidon2 Merkle trees.
//!
//! Every kernel has a portable variant (32x32-bit products from 16-bit halves) and a
//! `SHADER_INT64` fast path; [`Gpu`] picks the fastest the adapter offers.

mod counters;
mod dft;
mod field;
mod gpu;
mod merkle;
mod mmcs;
mod ntt;
mod pcs;
mod poseidon2;
mod select;

pub use counters::GpuCounters;
pub use dft::{DEFAULT_MIN_LOG_ROWS, GpuDft};
pub use field::{as_words, from_words, mul_add_sub};
pub use gpu::{Gpu, GpuError, Products};
pub use merkle::{STAGING_BYTES, heights_admissible, merkle_layers};
pub use mmcs::{Compress, CpuMmcs, DEFAULT_GPU_THRESHOLD, FieldHash, GpuMerkleData, GpuMmcs};
pub use ntt::{Ntt, NttPlan, Transform};
pub use pcs::GpuFriPcs;
pub use poseidon2::{DeviceStates, Digest, Poseidon2Kernel};
pub use select::{GpuMode, adapters, lane_adapters, opened_counters};
