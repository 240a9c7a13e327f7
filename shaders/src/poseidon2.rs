//! Poseidon2 over BabyBear (width 16, Plonky3's default constants) on the device.
//!
//! [`Poseidon2Kernel`] compiles the permutation (`wgsl/poseidon2.wgsl`) together with the
//! Merkle kernels (`wgsl/merkle.wgsl`) once per device and keeps Plonky3's constants in a
//! storage buffer. The round constants are read at run time from p3-baby-bear's public
//! tables and the internal diagonal is recovered from p3-baby-bear's own internal linear
//! layer, so nothing is copied by hand. Everything is bit-identical to
//! `default_babybear_poseidon2_16()`, `PaddingFreeSponge<Perm, 16, 8, 8>` and
//! `TruncatedPermutation<Perm, 2, 8, 16>`.

use std::sync::Arc;

use p3_baby_bear::{
    BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL, BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL,
    BABYBEAR_POSEIDON2_RC_16_INTERNAL, BabyBear, GenericPoseidon2LinearLayersBabyBear,
};
use p3_field::PrimeCharacteristicRing;
use p3_poseidon2::GenericPoseidon2LinearLayers;

use crate::counters::Kind;
use crate::field::{as_words, from_words};
use crate::gpu::{Gpu, GpuError, dispatch};

/// Width of the permutation, in field elements.
pub const WIDTH: usize = 16;
/// Elements per digest (and rate of the sponge).
pub const DIGEST_ELEMS: usize = 8;
/// One Merkle digest, as Plonky3's `MerkleTreeMmcs` stores it.
pub type Digest = [BabyBear; DIGEST_ELEMS];

const WORKGROUP: u32 = 64;

const PERMUTE_KERNEL: &str = r#"
struct PermuteParams { count: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(1) var<uniform> permute_params: PermuteParams;
@group(0) @binding(2) var<storage, read_write> states: array<u32>;

@compute @workgroup_size(64)
fn permute(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>) {
    let i = id.x + id.y * n.x * 64u;
    if (i >= permute_params.count) { return; }
    var s: array<u32, 16>;
    for (var j = 0u; j < 16u; j++) { s[j] = states[i * 16u + j]; }
    p2_permute(&s);
    for (var j = 0u; j < 16u; j++) { states[i * 16u + j] = s[j]; }
}
"#;

/// The constants buffer layout the WGSL expects: initial external round constants, terminal
/// external round constants, internal round constants, internal diagonal (Montgomery words).
pub(crate) fn constant_words() -> Vec<u32> {
    let mut words = Vec::with_capacity(157);
    for round in BABYBEAR_POSEIDON2_RC_16_EXTERNAL_INITIAL.iter() {
        words.extend_from_slice(as_words(round));
    }
    for round in BABYBEAR_POSEIDON2_RC_16_EXTERNAL_FINAL.iter() {
        words.extend_from_slice(as_words(round));
    }
    words.extend_from_slice(as_words(&BABYBEAR_POSEIDON2_RC_16_INTERNAL));
    words.extend_from_slice(as_words(&internal_diagonal()));
    debug_assert_eq!(words.len(), 157);
    words
}

/// The diagonal `V` of the internal layer `J + Diag(V)` (J the all-ones matrix), read off
/// p3-baby-bear's generic internal layer applied to unit vectors: column i is `1 + V[i] e_i`.
fn internal_diagonal() -> [BabyBear; WIDTH] {
    std::array::from_fn(|i| {
        let mut unit = [BabyBear::ZERO; WIDTH];
        unit[i] = BabyBear::ONE;
        GenericPoseidon2LinearLayersBabyBear::internal_linear_layer(&mut unit);
        debug_assert!(unit.iter().enumerate().all(|(j, &x)| j == i || x == BabyBear::ONE));
        unit[i] - BabyBear::ONE
    })
}

/// States (16 field elements each) resident on the device, for [`Poseidon2Kernel::permute_device`].
pub struct DeviceStates {
    pub(crate) buffer: wgpu::Buffer,
    pub(crate) count: usize,
}

impl DeviceStates {
    /// Number of states.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no states.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Poseidon2 and Merkle kernels compiled for one device, with the constants uploaded.
///
/// ```no_run
/// use std::sync::Arc;
/// use p3_baby_bear::BabyBear;
/// use proofline_shaders::{Gpu, Poseidon2Kernel};
///
/// let kernel = Poseidon2Kernel::new(Gpu::first().unwrap());
/// let states = vec![[BabyBear::new(1); 16]; 1 << 16];
/// let permuted = kernel.permute(&states).unwrap();
/// // Benchmark: permutations on data already on the device.
/// let device = kernel.upload(&states);
/// let start = std::time::Instant::now();
/// kernel.permute_device(&device);
/// kernel.gpu().wait().unwrap();
/// println!("{:.0} perms/s", device.len() as f64 / start.elapsed().as_secs_f64());
/// # let _ = permuted;
/// ```
pub struct Poseidon2Kernel {
    gpu: Arc<Gpu>,
    constants: wgpu::Buffer,
    permute: wgpu::ComputePipeline,
    hash_rows: wgpu::ComputePipeline,
    compress: wgpu::ComputePipeline,
}

impl std::fmt::Debug for Poseidon2Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poseidon2Kernel").field("gpu", &self.gpu).finish()
    }
}

impl Poseidon2Kernel {
    /// Compile the kernels on `gpu` and upload the constants.
    pub fn new(gpu: Arc<Gpu>) -> Self {
        let poseidon2 = include_str!("../wgsl/poseidon2.wgsl");
        let permute_module = gpu.module("poseidon2-permute", &format!("{poseidon2}\n{PERMUTE_KERNEL}"));
        let merkle_module =
            gpu.module("poseidon2-merkle", &format!("{poseidon2}\n{}", include_str!("../wgsl/merkle.wgsl")));
        let permute = gpu.pipeline(&permute_module, "permute");
        let hash_rows = gpu.pipeline(&merkle_module, "hash_rows");
        let compress = gpu.pipeline(&merkle_module, "compress");
        let constants = gpu.storage("poseidon2-constants", &constant_words());
        Poseidon2Kernel { gpu, constants, permute, hash_rows, compress }
    }

    /// The device the kernels run on.
    pub fn gpu(&self) -> &Arc<Gpu> {
        &self.gpu
    }

    /// Copy states to the device (for [`Self::permute_device`]).
    pub fn upload(&self, states: &[[BabyBear; WIDTH]]) -> DeviceStates {
        let words = as_words(states.as_flattened());
        DeviceStates { buffer: self.gpu.storage("poseidon2-states", words), count: states.len() }
    }

    /// Copy states back from the device, waiting for all submitted work.
    pub fn download(&self, states: &DeviceStates) -> Result<Vec<[BabyBear; WIDTH]>, GpuError> {
        let values = from_words(self.gpu.read(&states.buffer, states.count * WIDTH)?);
        Ok(values.chunks_exact(WIDTH).map(|c| c.try_into().unwrap()).collect())
    }

    /// Permute every state in place on the device: one submission, no transfer, no wait.
    /// Time it with [`Gpu::wait`] for permutations per second.
    pub fn permute_device(&self, states: &DeviceStates) {
        if states.count == 0 {
            return;
        }
        let params = self.gpu.uniform("permute-params", &[states.count as u32, 0, 0, 0]);
        let bind = self.gpu.bind(&self.permute, &[&self.constants, &params, &states.buffer]);
        self.gpu.count().launched(Kind::Poseidon2, 1);
        self.gpu.submit(|enc| dispatch(enc, &self.permute, &bind, (states.count as u32).div_ceil(WORKGROUP)));
    }

    /// The Poseidon2 permutation of each state (upload, permute, download).
    pub fn permute(&self, states: &[[BabyBear; WIDTH]]) -> Result<Vec<[BabyBear; WIDTH]>, GpuError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        self.gpu.scoped("Poseidon2", || {
            let device = self.upload(states);
            self.permute_device(&device);
            self.download(&device)
        })
    }

    /// `PaddingFreeSponge<Perm, 16, 8, 8>` of each row of a row-major `width`-column matrix.
    pub fn hash_rows(&self, values: &[BabyBear], width: usize) -> Result<Vec<Digest>, GpuError> {
        let count = values.len().checked_div(width).unwrap_or(0);
        assert_eq!(count * width, values.len(), "values are whole rows");
        if count == 0 {
            return Ok(Vec::new());
        }
        self.gpu.scoped("Poseidon2 sponge", || {
            let rows = self.gpu.storage("rows", as_words(values));
            let digests = self.gpu.storage_empty("digests", count * DIGEST_ELEMS);
            self.gpu.submit(|enc| self.record_hash_rows(enc, &digests, &rows, count, width, 0));
            Ok(digests_from_words(self.gpu.read(&digests, count * DIGEST_ELEMS)?))
        })
    }

    /// `TruncatedPermutation<Perm, 2, 8, 16>` of each pair of digests.
    pub fn compress(&self, pairs: &[[Digest; 2]]) -> Result<Vec<Digest>, GpuError> {
        let n = pairs.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        self.gpu.scoped("Poseidon2 compression", || {
            // Input pairs at digests [0, 2n), outputs at [2n, 3n).
            let mut words = Vec::with_capacity(3 * n * DIGEST_ELEMS);
            words.extend_from_slice(as_words(pairs.as_flattened().as_flattened()));
            words.resize(3 * n * DIGEST_ELEMS, 0);
            let digests = self.gpu.storage("digests", &words);
            let level = CompressLevel { count: n, padded: n, src: 0, dst: 2 * n, inject: None };
            self.gpu.submit(|enc| self.record_compress(enc, &digests, &level));
            let mut out = self.gpu.read(&digests, 3 * n * DIGEST_ELEMS)?;
            Ok(digests_from_words(out.split_off(2 * n * DIGEST_ELEMS)))
        })
    }

    /// Record the sponge hash of `count` rows of `width` words (from `rows`) into digests
    /// `dst..` of `digests` (`hash_rows` in merkle.wgsl).
    pub(crate) fn record_hash_rows(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        digests: &wgpu::Buffer,
        rows: &wgpu::Buffer,
        count: usize,
        width: usize,
        dst: usize,
    ) {
        let params =
            self.gpu.uniform("hash-params", &[count as u32, 0, 0, dst as u32, width as u32, 0, 0, 0]);
        let bind = self.gpu.bind(&self.hash_rows, &[&self.constants, &params, digests, rows]);
        self.gpu.count().launched(Kind::Poseidon2, 1);
        dispatch(encoder, &self.hash_rows, &bind, (count as u32).div_ceil(WORKGROUP));
    }

    /// Record one level of 2-to-1 compression within `digests` (`compress` in merkle.wgsl).
    pub(crate) fn record_compress(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        digests: &wgpu::Buffer,
        level: &CompressLevel,
    ) {
        let (inject_at, inject_len) = level.inject.unwrap_or((0, 0));
        let params = [
            level.count as u32,
            level.padded as u32,
            level.src as u32,
            level.dst as u32,
            0,
            inject_at as u32,
            inject_len as u32,
            level.inject.is_some() as u32,
        ];
        let params = self.gpu.uniform("compress-params", &params);
        let bind = self.gpu.bind(&self.compress, &[&self.constants, &params, digests]);
        self.gpu.count().launched(Kind::Merkle, 1);
        dispatch(encoder, &self.compress, &bind, (level.padded as u32).div_ceil(WORKGROUP));
    }
}

/// One compression level, in digests of the buffer it works in: `count` nodes from pairs at
/// `src..` into `dst..`, zero up to `padded`, and with `inject = (at, len)` each node `i < len`
/// compressed again with the digest at `at + i` (zero past `len`).
pub(crate) struct CompressLevel {
    pub count: usize,
    pub padded: usize,
    pub src: usize,
    pub dst: usize,
    pub inject: Option<(usize, usize)>,
}

/// Digests from the words a kernel wrote.
pub(crate) fn digests_from_words(words: Vec<u32>) -> Vec<Digest> {
    from_words(words).chunks_exact(DIGEST_ELEMS).map(|c| c.try_into().unwrap()).collect()
}
