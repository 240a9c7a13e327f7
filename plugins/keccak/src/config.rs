//! The Plonky3 STARK configuration every proof of this plugin uses.
//!
//! It is the standard configuration of the Plonky3 examples: BabyBear, its degree-4
//! extension for challenges, Poseidon2 (width 16, Plonky3's default constants) for the
//! Merkle commitments ([`MerkleTreeMmcs`]) and the Fiat-Shamir challenger, radix-2 DIT
//! DFT for the low-degree extension, and FRI with `log_blowup = 1`, 100 queries and
//! 16 bits of query proof-of-work ([`FriParameters::new_benchmark`]).
//!
//! Everything is named by a type alias so that a GPU DFT ([`Dft`]) or a GPU Merkle tree
//! ([`ValMmcs`]) can be swapped in here without touching the prover code: the commitments
//! they produce must be bit-identical, so proofs stay verifiable by the stock verifier.

use p3_baby_bear::{BabyBear, Poseidon2BabyBear, default_babybear_poseidon2_16};
use p3_commit::ExtensionMmcs;
use p3_dft::Radix2DitParallel;
use p3_field::Field;
use p3_field::extension::BinomialExtensionField;
use p3_fri::{FriParameters, TwoAdicFriPcs};
use p3_merkle_tree::MerkleTreeMmcs;
use p3_symmetric::{PaddingFreeSponge, TruncatedPermutation};
use p3_uni_stark::StarkConfig;

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
/// Merkle commitments to matrices of base-field values (swap point for a GPU tree).
pub type ValMmcs =
    MerkleTreeMmcs<<Val as Field>::Packing, <Val as Field>::Packing, FieldHash, Compress, 2, 8>;
/// Merkle commitments to extension-field values, built on [`ValMmcs`].
pub type ChallengeMmcs = ExtensionMmcs<Val, Challenge, ValMmcs>;
/// The DFT used for the low-degree extension (swap point for a GPU NTT).
pub type Dft = Radix2DitParallel<Val>;
/// Fiat-Shamir challenger: Plonky3's Poseidon2 duplex sponge, with deterministic grinding.
pub type Challenger = crate::challenger::DeterministicChallenger;
/// The polynomial commitment scheme: FRI over two-adic cosets.
pub type Pcs = TwoAdicFriPcs<Val, Dft, ValMmcs, ChallengeMmcs>;
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

/// Build the STARK configuration. Cheap: call it per proof or keep one around.
pub fn stark_config() -> KeccakStarkConfig {
    let perm = perm();
    let hash = FieldHash::new(perm.clone());
    let compress = Compress::new(perm.clone());
    let val_mmcs = ValMmcs::new(hash, compress, MERKLE_CAP_HEIGHT);
    let challenge_mmcs = ChallengeMmcs::new(val_mmcs.clone());
    let fri_params = FriParameters::new_benchmark(challenge_mmcs);
    debug_assert_eq!(fri_params.log_blowup, LOG_BLOWUP);
    let pcs = Pcs::new(Dft::default(), val_mmcs, fri_params);
    KeccakStarkConfig::new(pcs, Challenger::new(perm))
}
