//! The Plonky3 STARK configuration every proof of this plugin uses.
//!
//! It is the standard configuration of the Plonky3 examples: BabyBear, its degree-4
//! extension for challenges, Poseidon2 (width 16, Plonky3's default constants) for the
//! Merkle commitments (`MerkleTreeMmcs`) and the Fiat-Shamir challenger, radix-2 DIT
//! DFT for the low-degree extension, and FRI with `log_blowup = 1`, 100 queries and
//! 16 bits of query proof-of-work ([`FriParameters::new_benchmark`]).
//!
//! The DFT ([`Dft`]) and the Merkle commitments ([`ValMmcs`]) are Proofline's GPU
//! implementations from `proofline-shaders`, which reproduce Plonky3's
//! `Radix2DitParallel` and `MerkleTreeMmcs` bit for bit and run on the CPU (as those
//! very Plonky3 types) when no GPU is given: a proof made on a GPU is byte-identical to
//! the CPU one and is checked by the stock Plonky3 verifier.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use p3_baby_bear::{BabyBear, Poseidon2BabyBear, default_babybear_poseidon2_16};
use p3_commit::ExtensionMmcs;
use p3_field::extension::BinomialExtensionField;
use p3_fri::FriParameters;
use p3_symmetric::{PaddingFreeSponge, TruncatedPermutation};
use p3_uni_stark::StarkConfig;
use proofline_shaders::{GpuDft, GpuFriPcs, GpuMmcs};

pub use proofline_shaders::Gpu;

/// The base field.
pub type Val = BabyBear;
/// The challenge field: the degree-4 binomial extension of BabyBear.
pub type Challenge = BinomialExtensionField<Val, 4>;
/// Poseidon2 over BabyBear, width 16, with Plonky3's default round constants.
pub type Perm = Poseidon2BabyBear<16>;
/// Leaf hash of the Merkle trees: a sponge of rate 8 with an 8-element digest.
pub type FieldHash = PaddingFreeSponge<Perm, 16, 8, 8>;
/// Two-to-one compression of Merkle nodes.
pub type Compress = TruncatedPermutation<Perm, 2, 8, 16>;
/// Merkle commitments to matrices of base-field values: Plonky3's
/// `MerkleTreeMmcs<Packing, Packing, FieldHash, Compress, 2, 8>`, on a GPU when one is given.
pub type ValMmcs = GpuMmcs;
/// Merkle commitments to extension-field values, built on [`ValMmcs`].
pub type ChallengeMmcs = ExtensionMmcs<Val, Challenge, ValMmcs>;
/// The DFT of the low-degree extension: Plonky3's `Radix2DitParallel`, on a GPU when one
/// is given.
pub type Dft = GpuDft;
/// Fiat-Shamir challenger: Plonky3's Poseidon2 duplex sponge, with deterministic grinding.
pub type Challenger = crate::challenger::DeterministicChallenger;
/// The polynomial commitment scheme: FRI over two-adic cosets. Plonky3's
/// `TwoAdicFriPcs<Val, Dft, ValMmcs, ChallengeMmcs>`, with the main trace's LDE and Merkle
/// tree kept on the GPU between the two when one is given.
pub type Pcs = GpuFriPcs<ChallengeMmcs>;
/// The complete STARK configuration.
pub type KeccakStarkConfig = StarkConfig<Pcs, Challenge, Challenger>;
/// A STARK proof under [`KeccakStarkConfig`].
pub type StarkProof = p3_uni_stark::Proof<KeccakStarkConfig>;

/// `log2` of the FRI blowup factor.
pub const LOG_BLOWUP: usize = 1;
/// Height of the Merkle cap (0: a plain root).
pub const MERKLE_CAP_HEIGHT: usize = 0;

/// The Poseidon2 permutation used everywhere (commitments, challenger, accumulator).
pub fn perm() -> Perm {
    default_babybear_poseidon2_16()
}

/// Which matrices go to the GPU: smaller ones are faster on the CPU than a launch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Offload {
    /// The LDE of a matrix with fewer than `2^min_log_rows` rows runs on the CPU.
    pub min_log_rows: usize,
    /// A Merkle tree over fewer than `min_cells` field elements is built on the CPU.
    pub min_cells: usize,
}

impl Offload {
    /// Thresholds for production: only work worth a launch goes to the device.
    pub const DEFAULT: Offload = Offload {
        min_log_rows: proofline_shaders::DEFAULT_MIN_LOG_ROWS,
        min_cells: proofline_shaders::DEFAULT_GPU_THRESHOLD,
    };
    /// Everything on the device, however small (tests).
    pub const ALL: Offload = Offload { min_log_rows: 0, min_cells: 0 };
}

/// Build the STARK configuration on the CPU. Cheap: call it per proof or keep one around.
pub fn stark_config() -> KeccakStarkConfig {
    assemble(GpuDft::cpu(), GpuMmcs::new(None, MERKLE_CAP_HEIGHT))
}

/// The same configuration with the LDE and the Merkle trees on `gpu` (above the
/// [`Offload::DEFAULT`] thresholds). Proofs are identical to [`stark_config`]'s.
///
/// ```no_run
/// let gpu = proofline_keccak::config::Gpu::first().unwrap();
/// let config = proofline_keccak::config::stark_config_on(&gpu, proofline_keccak::config::Offload::DEFAULT);
/// # let _ = config;
/// ```
pub fn stark_config_on(gpu: &Arc<Gpu>, offload: Offload) -> KeccakStarkConfig {
    // One DFT and one MMCS per device and thresholds: they cache compiled kernels and
    // twiddles, which every proof on that device reuses.
    type Parts = (Dft, ValMmcs);
    static PARTS: OnceLock<Mutex<HashMap<(usize, Offload), Parts>>> = OnceLock::new();
    let key = (Arc::as_ptr(gpu) as usize, offload);
    let (dft, mmcs) = PARTS
        .get_or_init(Default::default)
        .lock()
        .expect("GPU configuration cache lock")
        .entry(key)
        .or_insert_with(|| {
            let dft = GpuDft::on(gpu.clone()).with_min_log_rows(offload.min_log_rows);
            let mmcs = GpuMmcs::new(Some(gpu.clone()), MERKLE_CAP_HEIGHT).with_threshold(offload.min_cells);
            (dft, mmcs)
        })
        .clone();
    assemble(dft, mmcs)
}

fn assemble(dft: Dft, val_mmcs: ValMmcs) -> KeccakStarkConfig {
    let challenge_mmcs = ChallengeMmcs::new(val_mmcs.clone());
    let fri_params = FriParameters::new_benchmark(challenge_mmcs);
    debug_assert_eq!(fri_params.log_blowup, LOG_BLOWUP);
    let pcs = Pcs::new(dft, val_mmcs, fri_params);
    KeccakStarkConfig::new(pcs, Challenger::new(perm()))
}
