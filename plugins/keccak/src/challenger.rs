//! A Poseidon2 duplex challenger whose proof-of-work grinding is deterministic.
//!
//! [`DeterministicChallenger`] is Plonky3's `DuplexChallenger` (BabyBear, Poseidon2 width
//! 16, rate 8) with one change: `grind` always returns the *smallest* passing witness.
//! Plonky3's own `grind` searches with `find_map_any`, which under the `parallel` feature
//! of `p3-maybe-rayon` returns whichever thread finds a witness first, so two runs of the
//! same proof can differ in their PoW witness. Proofline needs re-runs of a task to give
//! identical bytes (duplicate results are recognised by content).
//!
//! The search is the same SIMD batched search as Plonky3's, run serially in batch order;
//! its result equals what serial Plonky3 returns, so the transcript and the proofs are
//! exactly those of the stock `DuplexChallenger`, and any verifier using the stock
//! challenger accepts them (a verifier never grinds; it only checks the witness).

use p3_challenger::{
    CanObserve, CanSample, CanSampleBits, DuplexChallenger, FieldChallenger, GrindingChallenger,
};
use p3_field::{Field, PackedValue, PrimeCharacteristicRing, PrimeField64};
use p3_symmetric::Permutation;

use crate::config::{Perm, Val};

const WIDTH: usize = 16;
const RATE: usize = 8;

/// Plonky3's duplex challenger with deterministic grinding (see the module docs).
#[derive(Clone, Debug)]
pub struct DeterministicChallenger(pub DuplexChallenger<Val, Perm, WIDTH, RATE>);

impl DeterministicChallenger {
    /// A fresh transcript over `perm`.
    pub fn new(perm: Perm) -> Self {
        Self(DuplexChallenger::new(perm))
    }

    /// The smallest witness passing the `bits`-bit PoW check on the current transcript,
    /// found without changing it.
    fn smallest_witness(&self, bits: usize) -> Val {
        type Packed = <Val as Field>::Packing;
        let inner = &self.0;
        let witness_idx = inner.input_buffer.len();
        assert!(witness_idx < RATE, "a full input buffer is always absorbed");
        // What duplexing does when it absorbs `input_buffer ++ [witness]`.
        let tagged_capacity = inner.sponge_state[RATE] + Val::from_u8((witness_idx + 1) as u8);
        let base: [Packed; WIDTH] = std::array::from_fn(|i| match i {
            _ if i < witness_idx => Packed::from(inner.input_buffer[i]),
            _ if i < RATE => Packed::ZERO,
            RATE => Packed::from(tagged_capacity),
            _ => Packed::from(inner.sponge_state[i]),
        });
        let lanes = Packed::WIDTH as u64;
        let mask = (1u64 << bits) - 1;
        for batch in 0..Val::ORDER_U64.div_ceil(lanes) {
            let first = batch * lanes;
            let mut state = base;
            state[witness_idx] = Packed::from_fn(|lane| {
                let candidate = first + lane as u64;
                if candidate < Val::ORDER_U64 { Val::from_u64(candidate) } else { Val::NEG_ONE }
            });
            inner.permutation.permute_mut(&mut state);
            // The sample a PoW check draws is the last rate element.
            let hit =
                state[RATE - 1].as_slice().iter().position(|sample| sample.as_canonical_u64() & mask == 0);
            if let Some(lane) = hit {
                return Val::from_u64((first + lane as u64).min(Val::ORDER_U64 - 1));
            }
        }
        panic!("no proof-of-work witness in the whole field");
    }
}

impl<T> CanObserve<T> for DeterministicChallenger
where
    DuplexChallenger<Val, Perm, WIDTH, RATE>: CanObserve<T>,
{
    fn observe(&mut self, value: T) {
        self.0.observe(value);
    }

    fn observe_slice(&mut self, values: &[T])
    where
        T: Clone,
    {
        self.0.observe_slice(values);
    }
}

impl<T> CanSample<T> for DeterministicChallenger
where
    DuplexChallenger<Val, Perm, WIDTH, RATE>: CanSample<T>,
{
    fn sample(&mut self) -> T {
        self.0.sample()
    }
}

impl CanSampleBits<usize> for DeterministicChallenger {
    fn sample_bits(&mut self, bits: usize) -> usize {
        self.0.sample_bits(bits)
    }
}

impl FieldChallenger<Val> for DeterministicChallenger {}

impl GrindingChallenger for DeterministicChallenger {
    type Witness = Val;

    fn grind(&mut self, bits: usize) -> Val {
        assert!(bits < 32, "PoW difficulty must be below the field size");
        if bits == 0 {
            return Val::ZERO;
        }
        let witness = self.smallest_witness(bits);
        assert!(self.0.check_witness(bits, witness), "replicated PoW search is exact");
        witness
    }

    fn check_witness(&mut self, bits: usize, witness: Val) -> bool {
        self.0.check_witness(bits, witness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::perm;

    #[test]
    fn grind_matches_stock_and_is_the_smallest() {
        for prefix in 0..6u32 {
            let mut ours = DeterministicChallenger::new(perm());
            for i in 0..prefix {
                ours.observe(Val::from_u32(i * 977 + 5));
            }
            let stock = ours.0.clone();
            let w = ours.grind(12);
            for smaller in 0..w.as_canonical_u64() {
                assert!(!stock.clone().check_witness(12, Val::from_u64(smaller)));
            }
            // The transcript continues exactly as the stock challenger's would.
            let mut advanced = stock.clone();
            assert!(advanced.check_witness(12, w));
            assert_eq!(advanced.sample_bits(20), ours.sample_bits(20));
            // Serial Plonky3 finds the same witness.
            if !p3_maybe_rayon::PARALLEL_ENABLED {
                assert_eq!(stock.clone().grind(12), w);
            }
        }
    }
}
