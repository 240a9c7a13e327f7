//! Batched BabyBear NTTs on the device: forward DFT, inverse DFT and coset LDE over every
//! column of a row-major matrix at once, bit-exact with Plonky3's `Radix2DitParallel`.
//!
//! The transforms are radix-2 decimation-in-frequency networks (natural-order input,
//! bit-reversed output), run a tile at a time in workgroup memory: each dispatch does as
//! many stages as one tile holds (8 or 9 with the 32 KiB tiles lavapipe and NVIDIA offer,
//! 7 or 8 with 16 KiB), so a 2^24-row transform takes three or four passes over memory.
//! Tiles of strided passes hold neighbouring rows too, so every pass reads and writes runs
//! of at least 128 bytes where the matrix is narrow. The coset LDE is an inverse DFT in
//! place in its input buffer, then a forward DFT into the output buffer whose first pass
//! gathers its input from the inverse's bit-reversed output, multiplying row j by
//! `shift^j / n` and reading zeros past n: no bit-reversal pass and no zero fill. Its
//! bit-reversed output is exactly what `coset_lde_batch(..).bit_reverse_rows()` stores.
//!
//! Twiddles are computed on the host with Plonky3 and uploaded once: one table per
//! direction, laid out so the table for 2^k rows serves every smaller size, and grown
//! when a larger size comes along.

use std::sync::{Arc, Mutex};

use p3_baby_bear::BabyBear;
use p3_field::{Field, PrimeCharacteristicRing, TwoAdicField};

use crate::counters::Kind;
use crate::field::{as_words, from_words};
use crate::gpu::{Gpu, GpuError, dispatch};

/// Largest number of workgroup-memory words a tile uses, even where the device offers more.
const MAX_TILE_WORDS: u32 = 8192;
/// Widest column chunk of a tile, as a power of two, unless the matrix is short.
const MIN_LOG_CHUNK: u32 = 4;
/// log2 of the words a tile reads contiguously (32 words: 128 bytes), where it can.
const MIN_RUN_LOG: u32 = 5;
/// Threads per workgroup in `ntt.wgsl`.
const WG: u32 = 256;

/// Which transform an [`NttPlan`] runs; rows are natural order on input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transform {
    /// Coefficients to evaluations over the subgroup H of order `rows`, output rows in
    /// bit-reversed order (Plonky3's `dft_batch(..).bit_reverse_rows()`).
    Dft,
    /// Evaluations over H to coefficients, natural order (Plonky3's `idft_batch`).
    Idft,
    /// Evaluations over H to evaluations over `shift * K`, |K| = `rows << added_bits`,
    /// output rows in bit-reversed order (`coset_lde_batch(..).bit_reverse_rows()`).
    CosetLde {
        /// log2 of the blowup.
        added_bits: u32,
        /// The coset shift.
        shift: BabyBear,
    },
}

impl Transform {
    fn added_bits(self) -> u32 {
        match self {
            Transform::CosetLde { added_bits, .. } => added_bits,
            _ => 0,
        }
    }
}

/// One twiddle table on the device: `log` is the largest log2 size it serves.
struct Twiddles {
    log: u32,
    buffer: wgpu::Buffer,
}

/// The NTT kernels compiled for one [`Gpu`], with their twiddle tables.
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use p3_field::{Field, PrimeCharacteristicRing};
/// use proofline_shaders::{Gpu, Ntt};
///
/// let ntt = Ntt::new(Gpu::first().unwrap());
/// let evals = vec![BabyBear::ONE; 1024 * 4]; // 1024 rows, 4 columns
/// // Evaluations over the coset GENERATOR * K, |K| = 4096, rows bit-reversed.
/// let lde = ntt.coset_lde_batch(&evals, 4, 2, BabyBear::GENERATOR).unwrap();
/// assert_eq!(lde.len(), 4096 * 4);
/// ```
pub struct Ntt {
    gpu: Arc<Gpu>,
    dif: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    bitrev: wgpu::ComputePipeline,
    tile_log: u32,
    forward: Mutex<Option<Twiddles>>,
    inverse: Mutex<Option<Twiddles>>,
}

impl std::fmt::Debug for Ntt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ntt").field("gpu", &self.gpu).field("tile_words", &(1u32 << self.tile_log)).finish()
    }
}

impl Ntt {
    /// Compile the kernels for `gpu`, with tiles as large as its workgroup memory allows
    /// (up to 8192 words).
    pub fn new(gpu: Arc<Gpu>) -> Ntt {
        Self::with_tile_words(gpu, MAX_TILE_WORDS)
    }

    /// Compile the kernels with tiles of at most `words` words of workgroup memory
    /// (rounded down to a power of two, at least 2, within the device's limit): smaller
    /// tiles mean more passes. For tuning and tests; [`Ntt::new`] picks the largest.
    pub fn with_tile_words(gpu: Arc<Gpu>, words: u32) -> Ntt {
        let words = words.min(gpu.limits().max_compute_workgroup_storage_size / 4).max(2);
        let tile_log = words.ilog2();
        let source = include_str!("../wgsl/ntt.wgsl").replace("TILE_WORDS", &(1u32 << tile_log).to_string());
        let module = gpu.module("ntt", &source);
        let dif = gpu.pipeline(&module, "dif");
        let gather = gpu.pipeline(&module, "dif_gather");
        let bitrev = gpu.pipeline(&module, "bitrev");
        Ntt { gpu, dif, gather, bitrev, tile_log, forward: Mutex::new(None), inverse: Mutex::new(None) }
    }

    /// The device the kernels run on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Forward DFT of each column of `values` (`width` columns, a power-of-two number of
    /// rows, natural order). Returns the evaluations with rows in bit-reversed order.
    pub fn dft_batch(&self, values: &[BabyBear], width: usize) -> Result<Vec<BabyBear>, GpuError> {
        self.transform(Transform::Dft, values, width)
    }

    /// Inverse DFT of each column of `values` (evaluations over the subgroup, natural
    /// order), scaled by 1/n. Returns the coefficients in natural order.
    pub fn idft_batch(&self, values: &[BabyBear], width: usize) -> Result<Vec<BabyBear>, GpuError> {
        self.transform(Transform::Idft, values, width)
    }

    /// Coset LDE of each column of `values` (evaluations over H, natural order) onto
    /// `shift * K` with |K| = |H| << `added_bits`. Returns rows in bit-reversed order.
    pub fn coset_lde_batch(
        &self,
        values: &[BabyBear],
        width: usize,
        added_bits: usize,
        shift: BabyBear,
    ) -> Result<Vec<BabyBear>, GpuError> {
        let added_bits =
            u32::try_from(added_bits).map_err(|_| GpuError::TooLarge("blowup too large".into()))?;
        self.transform(Transform::CosetLde { added_bits, shift }, values, width)
    }

    fn transform(
        &self,
        transform: Transform,
        values: &[BabyBear],
        width: usize,
    ) -> Result<Vec<BabyBear>, GpuError> {
        assert!(width > 0, "a matrix with at least one column");
        let rows = values.len() / width;
        assert!(
            rows * width == values.len() && rows.is_power_of_two(),
            "{rows} rows of {width}: not a power of two"
        );
        self.gpu.scoped("NTT", || {
            let plan = NttPlan::new(self, transform, rows.ilog2(), width)?;
            plan.load(values);
            plan.run();
            plan.read()
        })
    }

    /// The twiddle table of one direction serving sizes up to 2^log.
    fn twiddles(&self, inverse: bool, log: u32) -> wgpu::Buffer {
        let cache = if inverse { &self.inverse } else { &self.forward };
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = cache.as_ref().filter(|t| t.log >= log) {
            return t.buffer.clone();
        }
        // tw[m - 1 + k] = w_{2m}^k for m = 2^t, t < log.
        let mut table = Vec::with_capacity((1usize << log).max(2) - 1);
        for t in 0..log as usize {
            let root = BabyBear::two_adic_generator(t + 1);
            let root = if inverse { root.inverse() } else { root };
            table.extend(root.powers().take(1 << t));
        }
        if table.is_empty() {
            // One row has no stages, but a binding needs at least one word.
            table.push(BabyBear::ONE);
        }
        let label = if inverse { "ntt-inverse-twiddles" } else { "ntt-twiddles" };
        let buffer = self.gpu.storage(label, as_words(&table));
        *cache = Some(Twiddles { log, buffer: buffer.clone() });
        buffer
    }
}

/// What one pass of a plan runs (entry points of `ntt.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// Tiles of DIF stages, in place.
    Dif,
    /// The first forward pass of an LDE, loading the bit-reversed, scaled, zero-padded
    /// coefficients straight from the inverse DFT's buffer.
    Gather,
    /// In-place bit reversal with per-row factors.
    Bitrev,
}

/// One pass of the plan.
struct Step {
    kernel: Kernel,
    bind: wgpu::BindGroup,
    groups: u32,
}

/// A transform of one shape, set up on the device to run repeatedly: work buffers, the
/// bind groups of every pass, and the twiddles. Load a matrix with [`load`](Self::load),
/// [`run`](Self::run), and [`read`](Self::read) the result or hand [`buffer`](Self::buffer)
/// to the next kernel.
///
/// A coset LDE has two buffers: the input, where the inverse DFT runs in place, and the
/// output, which the first forward pass fills by gathering from the input (bit reversal,
/// `shift^j / n` and the zero padding folded into its loads). A DFT or inverse DFT runs in
/// place in one buffer.
///
/// For a benchmark, `run` followed by [`Gpu::wait`] times the kernels alone: no host
/// transfer and no pipeline or twiddle setup. `run` transforms whatever the input holds, so
/// repeated runs cost the same but only the first one after `load` computes the transform
/// of the loaded matrix (a DFT or inverse DFT overwrites its input).
///
/// ```no_run
/// use p3_baby_bear::BabyBear;
/// use proofline_shaders::{Gpu, Ntt, NttPlan, Transform};
///
/// let ntt = Ntt::new(Gpu::first().unwrap());
/// let shift = BabyBear::new(31);
/// let plan = NttPlan::new(&ntt, Transform::CosetLde { added_bits: 1, shift }, 20, 8).unwrap();
/// plan.load(&vec![BabyBear::new(7); (1 << 20) * 8]);
/// let start = std::time::Instant::now();
/// plan.run();
/// ntt.gpu().wait().unwrap();
/// println!("LDE 2^20 x 8 -> 2^21: {:?}", start.elapsed());
/// let lde = plan.read().unwrap(); // 2^21 * 8 values, rows bit-reversed
/// # drop(lde);
/// ```
pub struct NttPlan {
    gpu: Arc<Gpu>,
    transform: Transform,
    log_rows: u32,
    width: usize,
    /// The LDE's input and inverse-DFT work space (`None`: the transform runs in `buffer`).
    input: Option<wgpu::Buffer>,
    buffer: wgpu::Buffer,
    dif: wgpu::ComputePipeline,
    gather: wgpu::ComputePipeline,
    bitrev: wgpu::ComputePipeline,
    steps: Vec<Step>,
}

impl std::fmt::Debug for NttPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NttPlan")
            .field("transform", &self.transform)
            .field("log_rows", &self.log_rows)
            .field("width", &self.width)
            .field("passes", &self.passes())
            .finish()
    }
}

impl NttPlan {
    /// Set up `transform` of a matrix with 2^`log_rows` rows and `width` columns.
    /// `Err(TooLarge)` where the output does not fit the device's buffer limits (or
    /// exceeds BabyBear's 2^27 two-adic subgroup).
    pub fn new(ntt: &Ntt, transform: Transform, log_rows: u32, width: usize) -> Result<NttPlan, GpuError> {
        let gpu = &ntt.gpu;
        let log_out = log_rows + transform.added_bits();
        let limits = gpu.limits();
        let max_bytes = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        let words = (width as u64).checked_shl(log_out).filter(|w| w >> log_out == width as u64);
        let fits = words.is_some_and(|w| w < (1 << 32) && w * 4 <= max_bytes);
        if log_out as usize > BabyBear::TWO_ADICITY || width == 0 || !fits {
            return Err(GpuError::TooLarge(format!(
                "NTT of 2^{log_out} rows x {width} columns exceeds the device's {max_bytes}-byte buffers"
            )));
        }
        let lde = matches!(transform, Transform::CosetLde { .. });
        let mut plan = NttPlan {
            gpu: gpu.clone(),
            transform,
            log_rows,
            width,
            input: lde.then(|| gpu.storage_empty("ntt-input", width << log_rows)),
            buffer: gpu.storage_empty("ntt-data", width << log_out),
            dif: ntt.dif.clone(),
            gather: ntt.gather.clone(),
            bitrev: ntt.bitrev.clone(),
            steps: Vec::new(),
        };
        let output = plan.buffer.clone();
        match transform {
            Transform::Dft => plan.dif_passes(ntt, false, log_rows, &output, None),
            Transform::Idft => {
                plan.dif_passes(ntt, true, log_rows, &output, None);
                plan.bitrev_pass(log_rows)
            }
            Transform::CosetLde { shift, .. } => {
                let input = plan.input.clone().expect("an LDE has an input buffer");
                plan.dif_passes(ntt, true, log_rows, &input, None);
                let factors = gpu.storage("ntt-row-factors", as_words(&row_factors(log_rows, shift)));
                plan.dif_passes(ntt, false, log_out, &output, Some((&input, &factors, log_rows)));
            }
        }
        Ok(plan)
    }

    /// The transform, input rows and width this plan was made for.
    pub fn shape(&self) -> (Transform, u32, usize) {
        (self.transform, self.log_rows, self.width)
    }

    /// Passes over device memory one run makes: `(DIF tile passes, bit-reversal passes)`.
    pub fn passes(&self) -> (usize, usize) {
        let bitrev = self.steps.iter().filter(|s| s.kernel == Kernel::Bitrev).count();
        (self.steps.len() - bitrev, bitrev)
    }

    /// Number of output values: `width << (log_rows + added_bits)`.
    pub fn output_len(&self) -> usize {
        self.width << (self.log_rows + self.transform.added_bits())
    }

    /// The device buffer holding the output after [`run`](Self::run) (and, for a DFT or an
    /// inverse DFT, the input before it).
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Upload the input matrix (`width << log_rows` values, rows in natural order).
    pub fn load(&self, values: &[BabyBear]) {
        assert_eq!(values.len(), self.width << self.log_rows, "input of the planned shape");
        let target = self.input.as_ref().unwrap_or(&self.buffer);
        self.gpu.queue.write_buffer(target, 0, bytemuck::cast_slice(as_words(values)));
    }

    /// Submit the transform of the input's contents; returns without waiting.
    pub fn run(&self) {
        self.gpu.count().launched(Kind::Ntt, self.steps.len());
        self.gpu.submit(|encoder| {
            for step in &self.steps {
                dispatch(encoder, self.pipeline(step.kernel), &step.bind, step.groups);
            }
        });
    }

    /// Wait for the device and read the output back (see [`Transform`] for its row order).
    pub fn read(&self) -> Result<Vec<BabyBear>, GpuError> {
        Ok(from_words(self.gpu.read(&self.buffer, self.output_len())?))
    }

    fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        match kernel {
            Kernel::Dif => &self.dif,
            Kernel::Gather => &self.gather,
            Kernel::Bitrev => &self.bitrev,
        }
    }

    /// Passes of up to one tile of DIF stages each over the first 2^`log_rows` rows of
    /// `data`. With `gather = (src, factors, src_log)` the first pass loads its input from
    /// `src` (see `dif_gather` in `ntt.wgsl`), and there is a first pass even for one row.
    fn dif_passes(
        &mut self,
        ntt: &Ntt,
        inverse: bool,
        log_rows: u32,
        data: &wgpu::Buffer,
        gather: Option<(&wgpu::Buffer, &wgpu::Buffer, u32)>,
    ) {
        if log_rows == 0 && gather.is_none() {
            return;
        }
        let twiddles = ntt.twiddles(inverse, log_rows);
        let width_log = self.width.next_power_of_two().ilog2();
        // Wide column chunks for short matrices; at least 2 rows per tile.
        let log_c =
            width_log.min(MIN_LOG_CHUNK.max(ntt.tile_log.saturating_sub(log_rows))).min(ntt.tile_log - 1);
        // Where a chunk holds whole rows, neighbouring rows make the contiguous runs longer.
        let full_rows = 1usize << log_c >= self.width;
        let run_log =
            if full_rows { MIN_RUN_LOG.saturating_sub(log_c) } else { 0 }.min(ntt.tile_log - 1 - log_c);
        let per_pass = ntt.tile_log - log_c - run_log;
        let passes = log_rows.div_ceil(per_pass).max(1);
        let chunks = self.width.div_ceil(1 << log_c) as u32;
        let mut done = 0;
        for pass in 0..passes {
            // Spread the stages evenly, the larger passes first.
            let stages = log_rows / passes + u32::from(pass < log_rows % passes);
            let lo = log_rows - done - stages;
            done += stages;
            let log_r = run_log.min(lo);
            let groups = (1u32 << (log_rows - stages - log_r)) * chunks;
            let mut params = [self.width as u32, log_rows, lo, stages, log_c, chunks, 0, log_r];
            match gather.filter(|_| pass == 0) {
                Some((src, factors, src_log)) => {
                    params[6] = src_log;
                    let bindings = [(0, data), (1, &twiddles), (3, src), (4, factors)];
                    self.push(Kernel::Gather, &bindings, &params, groups);
                }
                None => self.push(Kernel::Dif, &[(0, data), (1, &twiddles)], &params, groups),
            }
        }
    }

    /// The in-place bit reversal of the first 2^`log_rows` rows, scaled by 1/n.
    fn bitrev_pass(&mut self, log_rows: u32) {
        let scale = BabyBear::ONE.div_2exp_u64(log_rows as u64);
        let params = [self.width as u32, log_rows, 0, 0, 0, 0, as_words(&[scale])[0], 0];
        let groups = ((self.width as u64) << log_rows).div_ceil(WG as u64) as u32;
        let buffer = self.buffer.clone();
        self.push(Kernel::Bitrev, &[(0, &buffer)], &params, groups);
    }

    /// A pass binding `params` at 2 and each `(binding, buffer)`.
    fn push(&mut self, kernel: Kernel, bindings: &[(u32, &wgpu::Buffer)], params: &[u32; 8], groups: u32) {
        let uniform = self.gpu.uniform("ntt-params", params);
        let mut entries = bindings.to_vec();
        entries.push((2, &uniform));
        let bind = self.gpu.bind_at(self.pipeline(kernel), &entries);
        self.steps.push(Step { kernel, bind, groups });
    }
}

/// `shift^j / 2^log_rows` for every row j: what the LDE's gather multiplies row j by.
fn row_factors(log_rows: u32, shift: BabyBear) -> Vec<BabyBear> {
    let scale = BabyBear::ONE.div_2exp_u64(log_rows as u64);
    shift.powers().take(1 << log_rows).map(|p| p * scale).collect()
}
