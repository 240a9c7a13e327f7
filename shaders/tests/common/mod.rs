//! Fresh random inputs for the kernel tests: a new seed every run, named in every failure
//! message; set `SHADERS_TEST_SEED` to replay one.
#![allow(dead_code)] // each test file uses its own subset

use std::time::{SystemTime, UNIX_EPOCH};

use p3_baby_bear::BabyBear;
use p3_matrix::dense::RowMajorMatrix;
use proofline_shaders::{Gpu, GpuCounters};
use rand::{Rng, rngs::StdRng};

/// `SHADERS_TEST_SEED`, or the clock.
pub fn seed() -> u64 {
    std::env::var("SHADERS_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64)
}

/// `n` uniformly random field elements.
pub fn random(rng: &mut StdRng, n: usize) -> Vec<BabyBear> {
    (0..n).map(|_| BabyBear::new(rng.random_range(0..0x7800_0001))).collect()
}

/// A random `height x width` matrix.
pub fn matrix(rng: &mut StdRng, height: usize, width: usize) -> RowMajorMatrix<BabyBear> {
    RowMajorMatrix::new(random(rng, height * width), width)
}

/// What `gpu` (a device this test opened) ran, after asserting that kernels ran and no seam
/// fell back to the CPU: a seam returns the CPU's answer after a device error, so an equal
/// result alone proves nothing.
pub fn assert_ran(gpu: &Gpu, what: &str) -> GpuCounters {
    let ran = gpu.counters();
    assert!(ran.launches() > 0, "{what}: no kernel ran: {ran}");
    assert_eq!(ran.fallbacks, 0, "{what}: a seam fell back to the CPU: {ran}");
    ran
}
