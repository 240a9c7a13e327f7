//! Proving and verifying one batch of Keccak-f permutations with Plonky3.
//!
//! [`prove_perms`] / [`verify_perms`] use [`BoundKeccakAir`], so a proof is bound to the
//! exact (input, output) list; [`prove_plain`] runs the stock `KeccakAir` for benchmarks.

use std::panic::{AssertUnwindSafe, catch_unwind};

use p3_keccak_air::{KeccakAir, generate_trace_rows};
use p3_uni_stark::{prove, prove_with_preprocessed, setup_preprocessed, verify_with_preprocessed};

use crate::air::{BoundKeccakAir, PermIo};
use crate::config::{KeccakStarkConfig, LOG_BLOWUP, StarkProof, Val, stark_config};

/// Why a STARK could not be produced or did not verify.
#[derive(Debug, thiserror::Error)]
pub enum StarkError {
    /// An empty permutation list has no trace.
    #[error("no permutations to prove")]
    Empty,
    /// Plonky3 refused to prove (configuration or commitment failure).
    #[error("proving failed: {0}")]
    Prove(String),
    /// The proof does not verify for the given permutations.
    #[error("{0}")]
    Verify(String),
    /// The proof bytes are not a proof.
    #[error("proof undecodable: {0}")]
    Decode(String),
}

/// Prove `Keccak-f(io[k].input) == io[k].output` for every `k`, bound to exactly `io`.
///
/// Deterministic: the configuration has no randomness (no zero-knowledge blinding) and
/// proof-of-work grinding takes the first passing witness when Plonky3 runs serially.
pub fn prove_perms(io: &[PermIo]) -> Result<StarkProof, StarkError> {
    prove_perms_with(io, &stark_config())
}

/// [`prove_perms`] under `config`: the CPU one ([`stark_config`]) or one on a GPU
/// ([`crate::config::stark_config_on`]), which yields the same proof.
pub fn prove_perms_with(io: &[PermIo], config: &KeccakStarkConfig) -> Result<StarkProof, StarkError> {
    if io.is_empty() {
        return Err(StarkError::Empty);
    }
    let inputs = io.iter().map(|p| p.input).collect();
    let trace = generate_trace_rows::<Val>(inputs, LOG_BLOWUP);
    let air = BoundKeccakAir::new(io.to_vec());
    let degree_bits = BoundKeccakAir::degree_bits(io.len());
    let (prover_data, _) = setup_preprocessed(config, &air, degree_bits)
        .map_err(|e| StarkError::Prove(e.to_string()))?
        .ok_or_else(|| StarkError::Prove("AIR has no preprocessed columns".into()))?;
    prove_with_preprocessed(config, &air, trace, &[], Some(&prover_data))
        .map_err(|e| StarkError::Prove(e.to_string()))
}

/// Check that `proof` proves exactly the permutations `io` (see [`BoundKeccakAir`]).
///
/// The verifier rebuilds and commits to the preprocessed trace from `io` itself, so a
/// proof made for any other list (or for another trace height) is rejected. A panic
/// inside the Plonky3 verifier (malformed proof shapes) is reported as a failure.
pub fn verify_perms(io: &[PermIo], proof: &StarkProof) -> Result<(), StarkError> {
    if io.is_empty() {
        return Err(StarkError::Empty);
    }
    let run = || {
        let config = stark_config();
        let air = BoundKeccakAir::new(io.to_vec());
        let degree_bits = BoundKeccakAir::degree_bits(io.len());
        let (_, vk) = setup_preprocessed(&config, &air, degree_bits)
            .map_err(|e| StarkError::Verify(e.to_string()))?
            .ok_or_else(|| StarkError::Verify("AIR has no preprocessed columns".into()))?;
        verify_with_preprocessed(&config, &air, proof, &[], Some(&vk))
            .map_err(|e| StarkError::Verify(e.to_string()))
    };
    catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err(StarkError::Verify("verifier panicked on a malformed proof".into())))
}

/// Serialize a STARK proof (postcard).
pub fn encode_proof(proof: &StarkProof) -> Vec<u8> {
    postcard::to_allocvec(proof).expect("serializing a proof into memory cannot fail")
}

/// Deserialize a STARK proof produced by [`encode_proof`].
pub fn decode_proof(bytes: &[u8]) -> Result<StarkProof, StarkError> {
    postcard::from_bytes(bytes).map_err(|e| StarkError::Decode(e.to_string()))
}

/// Benchmark baseline: prove `inputs` with the stock `KeccakAir` (no binding) in one
/// `p3_uni_stark::prove` call under the same configuration; returns the proof size in
/// bytes (postcard). Panics if Plonky3 fails, which it does not for valid traces.
pub fn prove_plain(inputs: Vec<[u64; 25]>) -> usize {
    let config = stark_config();
    let trace = generate_trace_rows::<Val>(inputs, LOG_BLOWUP);
    let proof = prove(&config, &KeccakAir {}, trace, &[]).expect("Plonky3 proving failed");
    encode_proof(&proof).len()
}

#[cfg(test)]
mod tests {
    use p3_air::{Air, BaseAir, DebugConstraintBuilder};
    use p3_matrix::dense::RowMajorMatrix;
    use p3_uni_stark::{ProverConstraintFolder, SymbolicAirBuilder};

    use super::*;
    use crate::sponge::keccak_f;

    fn io(n: usize) -> Vec<PermIo> {
        (0..n)
            .map(|k| {
                let input =
                    std::array::from_fn(|i| ((k * 31 + i) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
                PermIo { input, output: keccak_f(&input) }
            })
            .collect()
    }

    #[test]
    fn binds_inputs_and_outputs() {
        let io = io(3);
        let proof = prove_perms(&io).unwrap();
        verify_perms(&io, &proof).unwrap();

        let mut wrong_out = io.clone();
        wrong_out[1].output[7] ^= 1;
        assert!(verify_perms(&wrong_out, &proof).is_err());

        let mut wrong_in = io.clone();
        wrong_in[2].input[24] ^= 1 << 40;
        assert!(verify_perms(&wrong_in, &proof).is_err());

        // A list of a different length (same trace height) is another statement.
        assert!(verify_perms(&io[..2], &proof).is_err());
    }

    /// A cheating prover's AIR: [`BoundKeccakAir`] for the prover and the verifier, but
    /// nothing at all for Plonky3's debug-build constraint check, so a "proof" of a false
    /// claim gets made in debug and release builds alike.
    struct Unchecked(BoundKeccakAir);

    impl BaseAir<Val> for Unchecked {
        fn width(&self) -> usize {
            BaseAir::<Val>::width(&self.0)
        }
        fn preprocessed_width(&self) -> usize {
            BaseAir::<Val>::preprocessed_width(&self.0)
        }
        fn preprocessed_trace(&self) -> Option<RowMajorMatrix<Val>> {
            self.0.preprocessed_trace()
        }
        fn preprocessed_next_row_columns(&self) -> Vec<usize> {
            BaseAir::<Val>::preprocessed_next_row_columns(&self.0)
        }
    }

    impl Air<SymbolicAirBuilder<Val>> for Unchecked {
        fn eval(&self, builder: &mut SymbolicAirBuilder<Val>) {
            self.0.eval(builder)
        }
    }

    impl<'a> Air<ProverConstraintFolder<'a, KeccakStarkConfig>> for Unchecked {
        fn eval(&self, builder: &mut ProverConstraintFolder<'a, KeccakStarkConfig>) {
            self.0.eval(builder)
        }
    }

    impl<'a> Air<DebugConstraintBuilder<'a, Val>> for Unchecked {
        fn eval(&self, _: &mut DebugConstraintBuilder<'a, Val>) {}
    }

    /// Prove `io` as [`prove_perms`] does, with the debug constraint check disarmed.
    fn prove_unchecked(io: &[PermIo]) -> StarkProof {
        let config = stark_config();
        let trace = generate_trace_rows::<Val>(io.iter().map(|p| p.input).collect(), LOG_BLOWUP);
        let air = Unchecked(BoundKeccakAir::new(io.to_vec()));
        let degree_bits = BoundKeccakAir::degree_bits(io.len());
        let (prover_data, _) = setup_preprocessed(&config, &air, degree_bits).unwrap().unwrap();
        prove_with_preprocessed(&config, &air, trace, &[], Some(&prover_data)).unwrap()
    }

    #[test]
    fn cannot_prove_a_false_claim() {
        // The cheating prover is a working prover: its proof of a true claim verifies.
        let honest = io(2);
        verify_perms(&honest, &prove_unchecked(&honest)).expect("a proof of a true claim");

        let mut false_claim = honest.clone();
        false_claim[0].output[0] ^= 1;
        let proof = prove_unchecked(&false_claim);
        let err = verify_perms(&false_claim, &proof).expect_err("a proof of a false claim verified");
        assert!(!err.to_string().contains("panicked"), "rejected by a check, not a panic: {err}");
    }
}
