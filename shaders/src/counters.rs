//! What one device did: kernel launches per kind, and the work a seam meant for the device
//! but finished on the CPU. Every seam falls back to the CPU on a device error and still
//! returns the right answer, so "GPU result == CPU result" alone cannot tell whether a
//! kernel ran; these counters can.

use std::sync::atomic::{AtomicU64, Ordering};

/// Which kernel a launch ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A pass of the NTT (DFT, inverse DFT, coset LDE).
    Ntt,
    /// A Poseidon2 permutation or row-hash (sponge) dispatch.
    Poseidon2,
    /// One compression level of a Merkle tree.
    Merkle,
    /// Element-wise field arithmetic (the arithmetic self-check).
    Field,
}

/// A snapshot of [`Gpu::counters`](crate::Gpu::counters), or a sum or difference of them.
///
/// ```no_run
/// let gpu = proofline_shaders::Gpu::first().unwrap();
/// let before = gpu.counters();
/// // ... prove something on `gpu` ...
/// let ran = gpu.counters().since(&before);
/// assert!(ran.launches() > 0 && ran.fallbacks == 0, "gpu kernels: {ran}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuCounters {
    /// NTT passes dispatched.
    pub ntt: u64,
    /// Poseidon2 permutation and sponge dispatches.
    pub poseidon2: u64,
    /// Merkle compression levels dispatched.
    pub merkle: u64,
    /// Field-arithmetic dispatches.
    pub field: u64,
    /// Work a seam sent to the device that ended on the CPU after a device error
    /// (refused, out of memory, too large for its buffers, readback failed).
    pub fallbacks: u64,
    /// Work a seam kept on the CPU by design: below its size threshold, or a shape the
    /// device path does not take. Not an error.
    pub skipped: u64,
}

impl GpuCounters {
    /// Kernel dispatches of every kind.
    pub fn launches(&self) -> u64 {
        self.ntt + self.poseidon2 + self.merkle + self.field
    }

    /// What happened after `earlier` (a snapshot of the same device).
    pub fn since(&self, earlier: &GpuCounters) -> GpuCounters {
        let d = |now: u64, then: u64| now.saturating_sub(then);
        GpuCounters {
            ntt: d(self.ntt, earlier.ntt),
            poseidon2: d(self.poseidon2, earlier.poseidon2),
            merkle: d(self.merkle, earlier.merkle),
            field: d(self.field, earlier.field),
            fallbacks: d(self.fallbacks, earlier.fallbacks),
            skipped: d(self.skipped, earlier.skipped),
        }
    }
}

impl std::ops::Add for GpuCounters {
    type Output = GpuCounters;

    fn add(self, o: GpuCounters) -> GpuCounters {
        GpuCounters {
            ntt: self.ntt + o.ntt,
            poseidon2: self.poseidon2 + o.poseidon2,
            merkle: self.merkle + o.merkle,
            field: self.field + o.field,
            fallbacks: self.fallbacks + o.fallbacks,
            skipped: self.skipped + o.skipped,
        }
    }
}

impl std::iter::Sum for GpuCounters {
    fn sum<I: Iterator<Item = GpuCounters>>(iter: I) -> GpuCounters {
        iter.fold(GpuCounters::default(), |a, b| a + b)
    }
}

/// `launches=N (ntt=.. poseidon2=.. merkle=..) fallbacks=M skipped=K`: the form logs carry
/// and tests parse.
impl std::fmt::Display for GpuCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "launches={} (ntt={} poseidon2={} merkle={}",
            self.launches(),
            self.ntt,
            self.poseidon2,
            self.merkle
        )?;
        if self.field > 0 {
            write!(f, " field={}", self.field)?;
        }
        write!(f, ") fallbacks={} skipped={}", self.fallbacks, self.skipped)
    }
}

/// The live counters a [`Gpu`](crate::Gpu) carries.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    ntt: AtomicU64,
    poseidon2: AtomicU64,
    merkle: AtomicU64,
    field: AtomicU64,
    fallbacks: AtomicU64,
    skipped: AtomicU64,
}

impl Counters {
    pub(crate) fn launched(&self, kind: Kind, dispatches: usize) {
        let counter = match kind {
            Kind::Ntt => &self.ntt,
            Kind::Poseidon2 => &self.poseidon2,
            Kind::Merkle => &self.merkle,
            Kind::Field => &self.field,
        };
        counter.fetch_add(dispatches as u64, Ordering::Relaxed);
    }

    pub(crate) fn fell_back(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn skipped(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> GpuCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        GpuCounters {
            ntt: get(&self.ntt),
            poseidon2: get(&self.poseidon2),
            merkle: get(&self.merkle),
            field: get(&self.field),
            fallbacks: get(&self.fallbacks),
            skipped: get(&self.skipped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_add_subtract_and_print_in_the_logged_form() {
        let live = Counters::default();
        live.launched(Kind::Ntt, 3);
        let before = live.snapshot();
        live.launched(Kind::Poseidon2, 2);
        live.launched(Kind::Merkle, 4);
        live.fell_back();
        live.skipped();
        let after = live.snapshot();
        let delta = after.since(&before);
        assert_eq!(
            delta,
            GpuCounters { poseidon2: 2, merkle: 4, fallbacks: 1, skipped: 1, ..Default::default() }
        );
        assert_eq!(after.launches(), 9);
        assert_eq!([before, delta].into_iter().sum::<GpuCounters>(), after);
        assert_eq!(after.to_string(), "launches=9 (ntt=3 poseidon2=2 merkle=4) fallbacks=1 skipped=1");
    }
}

/// A real device error inside a seam (the validation error of `Gpu::scoped`'s test hook):
/// the seam returns the CPU's answer and counts exactly one fallback, and the device keeps
/// working afterwards.
#[cfg(test)]
mod seam_fallbacks {
    use p3_baby_bear::BabyBear;
    use p3_commit::Mmcs;
    use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
    use p3_field::Field;
    use p3_matrix::Matrix;
    use p3_matrix::dense::RowMajorMatrix;

    use crate::{Gpu, GpuDft, GpuMmcs};

    fn matrix(height: usize, width: usize) -> RowMajorMatrix<BabyBear> {
        RowMajorMatrix::new((0..(height * width) as u32).map(|i| BabyBear::new(i * 7 + 3)).collect(), width)
    }

    #[test]
    fn a_device_error_in_the_dft_seam_is_one_counted_fallback() {
        let gpu = Gpu::first().expect("a Vulkan adapter (lavapipe in CI)");
        let dft = GpuDft::on(gpu.clone());
        let mat = matrix(64, 4);
        let shift = BabyBear::GENERATOR;
        let cpu = Radix2DitParallel::default().coset_lde_batch(mat.clone(), 1, shift).to_row_major_matrix();
        let on_gpu = || dft.coset_lde_batch(mat.clone(), 1, shift).to_row_major_matrix();

        gpu.fail_next_scope();
        assert!(on_gpu() == cpu, "the fallback computes the CPU's LDE");
        let failed = gpu.counters();
        assert_eq!(failed.fallbacks, 1, "{failed}");

        assert!(on_gpu() == cpu);
        let ran = gpu.counters().since(&failed);
        assert!(ran.ntt > 0 && ran.fallbacks == 0, "after the error the kernels run again: {ran}");
    }

    #[test]
    fn a_device_error_in_the_mmcs_seam_is_one_counted_fallback() {
        let gpu = Gpu::first().expect("a Vulkan adapter (lavapipe in CI)");
        let mmcs = GpuMmcs::on(gpu.clone());
        let (cpu_root, _) = mmcs.cpu().commit(vec![matrix(64, 8)]);

        gpu.fail_next_scope();
        let (root, data) = mmcs.commit(vec![matrix(64, 8)]);
        assert!(root == cpu_root && !data.on_gpu(), "committed on the CPU");
        let failed = gpu.counters();
        assert_eq!(failed.fallbacks, 1, "{failed}");

        let (root, data) = mmcs.commit(vec![matrix(64, 8)]);
        assert!(root == cpu_root && data.on_gpu(), "committed on the device");
        let ran = gpu.counters().since(&failed);
        assert!(ran.poseidon2 > 0 && ran.merkle > 0 && ran.fallbacks == 0, "{ran}");
    }
}
