//! BabyBear arithmetic on the device and the zero-copy view of Plonky3 field slices.
//!
//! Plonky3's `BabyBear` is `#[repr(transparent)]` over its Montgomery-form `u32`, and
//! the kernels compute in the same form, so slices are reinterpreted, never converted.

use p3_baby_bear::BabyBear;

use crate::counters::Kind;
use crate::gpu::{Gpu, GpuError, dispatch};

/// The Montgomery-form words of a BabyBear slice.
pub fn as_words(values: &[BabyBear]) -> &[u32] {
    // SAFETY: BabyBear (MontyField31) is #[repr(transparent)] over a u32.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast::<u32>(), values.len()) }
}

/// BabyBear values from Montgomery-form words produced by a kernel.
///
/// Every word must be below the modulus, which all kernels guarantee.
pub fn from_words(words: Vec<u32>) -> Vec<BabyBear> {
    debug_assert!(words.iter().all(|&w| w < 0x7800_0001));
    let mut words = std::mem::ManuallyDrop::new(words);
    // SAFETY: same layout as u32 (repr(transparent)), same allocation and capacity.
    unsafe { Vec::from_raw_parts(words.as_mut_ptr().cast::<BabyBear>(), words.len(), words.capacity()) }
}

const OPS_KERNEL: &str = r#"
@group(0) @binding(0) var<storage, read> a: array<u32>;
@group(0) @binding(1) var<storage, read> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(64)
fn ops(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = id.x + id.y * n.x * 64u;
    let len = arrayLength(&a);
    if (i >= len) { return; }
    out[i] = bb_mul(a[i], b[i]);
    out[len + i] = bb_add(a[i], b[i]);
    out[2u * len + i] = bb_sub(a[i], b[i]);
}
"#;

/// Element-wise `[a * b, a + b, a - b]` on the device: the arithmetic every kernel is
/// built on, exposed so it can be checked against Plonky3.
pub fn mul_add_sub(gpu: &Gpu, a: &[BabyBear], b: &[BabyBear]) -> Result<[Vec<BabyBear>; 3], GpuError> {
    assert_eq!(a.len(), b.len(), "operands of equal length");
    gpu.scoped("field arithmetic", || run_ops(gpu, a, b))
}

fn run_ops(gpu: &Gpu, a: &[BabyBear], b: &[BabyBear]) -> Result<[Vec<BabyBear>; 3], GpuError> {
    let n = a.len();
    let module = gpu.module("field-ops", OPS_KERNEL);
    let pipeline = gpu.pipeline(&module, "ops");
    let a_buf = gpu.storage("a", as_words(a));
    let b_buf = gpu.storage("b", as_words(b));
    let out = gpu.storage_empty("out", 3 * n);
    let bind = gpu.bind(&pipeline, &[&a_buf, &b_buf, &out]);
    gpu.count().launched(Kind::Field, 1);
    gpu.submit(|enc| dispatch(enc, &pipeline, &bind, (n as u32).div_ceil(64)));
    let mut words = gpu.read(&out, 3 * n)?;
    let sub = words.split_off(2 * n);
    let add = words.split_off(n);
    Ok([from_words(words), from_words(add), from_words(sub)])
}
