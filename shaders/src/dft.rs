//! The seam into Plonky3: [`GpuDft`] is a `TwoAdicSubgroupDft<BabyBear>` that runs the
//! batched DFT, inverse DFT and coset LDE on the device and falls back to Plonky3's
//! `Radix2DitParallel` for small matrices, without a GPU, or when the device refuses.
//!
//! Results are bit-identical to `Radix2DitParallel`, including the representation: the
//! evaluations come back as a `BitReversedMatrixView` over bit-reversed storage, so the
//! `bit_reverse_rows()` that `TwoAdicFriPcs` applies is free.

use std::sync::Arc;

use p3_baby_bear::BabyBear;
use p3_dft::{Radix2DitParallel, TwoAdicSubgroupDft};
use p3_matrix::Matrix;
use p3_matrix::bitrev::{BitReversedMatrixView, BitReversibleMatrix};
use p3_matrix::dense::RowMajorMatrix;

use crate::gpu::{Gpu, GpuError};
use crate::ntt::Ntt;

/// Matrices shorter than 2^this many rows stay on the CPU by default.
pub const DEFAULT_MIN_LOG_ROWS: usize = 12;

/// A `TwoAdicSubgroupDft<BabyBear>` on the GPU, for `TwoAdicFriPcs` and friends.
///
/// `Default` opens the process-wide [`Gpu::shared`] device (or runs everything on the
/// CPU where there is none); clones share the compiled kernels and twiddle tables.
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use p3_dft::TwoAdicSubgroupDft;
/// use p3_field::{Field, PrimeCharacteristicRing};
/// use p3_matrix::dense::RowMajorMatrix;
/// use proofline_shaders::GpuDft;
///
/// let dft = GpuDft::default();
/// let evals = RowMajorMatrix::new(vec![BabyBear::ONE; (1 << 16) * 8], 8);
/// // What TwoAdicFriPcs::commit does: the LDE, bit-reversed rows, row-major.
/// let lde = dft.coset_lde_batch(evals, 1, BabyBear::GENERATOR);
/// # let _ = lde;
/// ```
#[derive(Clone, Debug)]
pub struct GpuDft {
    ntt: Option<Arc<Ntt>>,
    cpu: Radix2DitParallel<BabyBear>,
    min_log_rows: usize,
}

impl Default for GpuDft {
    fn default() -> Self {
        GpuDft { ntt: Gpu::shared().ok().map(|gpu| Arc::new(Ntt::new(gpu))), ..GpuDft::cpu() }
    }
}

impl GpuDft {
    /// Run on `gpu`, for every size (threshold 0): what tests and benchmarks want.
    pub fn on(gpu: Arc<Gpu>) -> Self {
        GpuDft { ntt: Some(Arc::new(Ntt::new(gpu))), min_log_rows: 0, ..GpuDft::cpu() }
    }

    /// Everything on the CPU (Plonky3's `Radix2DitParallel`).
    pub fn cpu() -> Self {
        GpuDft { ntt: None, cpu: Radix2DitParallel::default(), min_log_rows: DEFAULT_MIN_LOG_ROWS }
    }

    /// Keep matrices with fewer than 2^`min_log_rows` rows on the CPU.
    pub fn with_min_log_rows(mut self, min_log_rows: usize) -> Self {
        self.min_log_rows = min_log_rows;
        self
    }

    /// The device kernels, if a GPU is in use.
    pub fn ntt(&self) -> Option<&Arc<Ntt>> {
        self.ntt.as_ref()
    }

    /// The kernels, when `mat` is worth a launch.
    pub(crate) fn device_for(&self, mat: &RowMajorMatrix<BabyBear>) -> Option<&Ntt> {
        let ntt = self.ntt.as_deref()?;
        (mat.width() > 0 && mat.height() >= 1 << self.min_log_rows.min(63)).then_some(ntt)
    }

    /// [`device_for`](Self::device_for), counting a matrix kept on the CPU as skipped.
    fn route(&self, mat: &RowMajorMatrix<BabyBear>) -> Option<&Ntt> {
        let ntt = self.device_for(mat);
        if let (None, Some(kept)) = (ntt, &self.ntt) {
            kept.gpu().count().skipped();
        }
        ntt
    }

    fn fallback(ntt: &Ntt, what: &str, mat: &RowMajorMatrix<BabyBear>, e: &GpuError) {
        ntt.gpu().count().fell_back();
        tracing::warn!("GPU {what} of {} x {} failed, using the CPU: {e}", mat.height(), mat.width());
    }
}

impl TwoAdicSubgroupDft<BabyBear> for GpuDft {
    type Evaluations = BitReversedMatrixView<RowMajorMatrix<BabyBear>>;

    fn dft_batch(&self, mat: RowMajorMatrix<BabyBear>) -> Self::Evaluations {
        if let Some(ntt) = self.route(&mat) {
            match ntt.dft_batch(&mat.values, mat.width()) {
                Ok(values) => return RowMajorMatrix::new(values, mat.width()).bit_reverse_rows(),
                Err(e) => Self::fallback(ntt, "DFT", &mat, &e),
            }
        }
        self.cpu.dft_batch(mat)
    }

    fn idft_batch(&self, mat: RowMajorMatrix<BabyBear>) -> RowMajorMatrix<BabyBear> {
        if let Some(ntt) = self.route(&mat) {
            match ntt.idft_batch(&mat.values, mat.width()) {
                Ok(values) => return RowMajorMatrix::new(values, mat.width()),
                Err(e) => Self::fallback(ntt, "inverse DFT", &mat, &e),
            }
        }
        self.cpu.idft_batch(mat)
    }

    fn coset_lde_batch(
        &self,
        mat: RowMajorMatrix<BabyBear>,
        added_bits: usize,
        shift: BabyBear,
    ) -> Self::Evaluations {
        if let Some(ntt) = self.route(&mat) {
            match ntt.coset_lde_batch(&mat.values, mat.width(), added_bits, shift) {
                Ok(values) => return RowMajorMatrix::new(values, mat.width()).bit_reverse_rows(),
                Err(e) => Self::fallback(ntt, "coset LDE", &mat, &e),
            }
        }
        self.cpu.coset_lde_batch(mat, added_bits, shift)
    }
}
