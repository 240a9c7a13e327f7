//! `BoundKeccakAir`: Plonky3's `KeccakAir` bound to a public list of (input, output) pairs.
//!
//! The stock [`KeccakAir`] has no public inputs: a plain STARK of it proves that *some*
//! permutations were computed correctly, nothing about which. `BoundKeccakAir` adds a
//! *preprocessed* trace that both prover and verifier build from the claimed list of
//! permutations, and constraints tying the main trace to it.
//!
//! # Layout
//!
//! Permutation `k` occupies main rows `24k .. 24k + 24` (one row per round, as in
//! `KeccakAir`). The preprocessed trace has [`PREP_WIDTH`] = 100 columns: the 25 lanes of a
//! Keccak state as 16-bit limbs, lane `i = x + 5y` in columns `4i .. 4i + 4`, least
//! significant limb first (the layout of `KeccakCols::preimage`).
//!
//! * row `24k` (round 0) holds the claimed **input** of permutation `k`,
//! * row `24k + 23` (round 23) holds the claimed **output** of permutation `k`,
//! * every other row is zero.
//!
//! # Constraints (on top of all of `KeccakAir`'s)
//!
//! * `step_flags[0] * (preimage - prep) = 0`: on each permutation's first row, the
//!   preimage equals the claimed input. `KeccakAir` already forces the preimage to stay
//!   constant over the 24 rows and to be the round-0 state.
//! * `step_flags[23] * (A''' - prep) = 0`: on each permutation's last row, the round
//!   output (`a_prime_prime_prime`) equals the claimed output.
//!
//! `KeccakAir` forces `step_flags` to be one-hot and to rotate from row 0, so row `r` is
//! round `r mod 24` and the two constraints fire exactly on the rows above. Both are of
//! degree 2, below `KeccakAir`'s degree 3, so the quotient does not grow.
//!
//! One preprocessed column set is used for both inputs and outputs (they live on
//! different rows), which halves the verifier's cost of rebuilding the preprocessed
//! commitment compared with separate input and output columns.
//!
//! # Padding
//!
//! The trace height is `(24 n).next_power_of_two()`. Rows past the claimed permutations
//! belong to all-zero-input permutations (what `generate_trace_rows` writes); their
//! preprocessed rows hold input zero and output `Keccak-f(0)` (a constant of the AIR).
//! A trailing partial permutation has no round-23 row and needs no output.
//!
//! The verifier commits to the preprocessed trace itself (see
//! [`crate::stark::verify_perms`]); the uni-stark transcript observes that commitment
//! before any challenge, so the proof is bound to exactly the claimed list.

use std::borrow::Borrow;
use std::sync::OnceLock;

use p3_air::{Air, AirBuilder, BaseAir, WindowAccess};
use p3_field::Field;
use p3_keccak_air::{KeccakAir, KeccakCols, NUM_KECCAK_COLS, NUM_ROUNDS, U64_LIMBS};
use p3_matrix::dense::RowMajorMatrix;

use crate::sponge::{State, keccak_f};

/// Width of the preprocessed trace: 25 lanes x 4 limbs of 16 bits.
pub const PREP_WIDTH: usize = 25 * U64_LIMBS;

/// One proven permutation: its input and its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PermIo {
    /// The state before the 24 rounds.
    pub input: State,
    /// The state after them: `Keccak-f(input)`.
    pub output: State,
}

/// `KeccakAir` plus preprocessed columns binding each permutation's input and output.
#[derive(Debug)]
pub struct BoundKeccakAir {
    io: Vec<PermIo>,
}

impl BoundKeccakAir {
    /// An AIR for exactly these permutations (in trace order).
    pub fn new(io: Vec<PermIo>) -> Self {
        Self { io }
    }

    /// The permutations this AIR is bound to.
    pub fn io(&self) -> &[PermIo] {
        &self.io
    }

    /// Height of the main and preprocessed traces for `n` permutations.
    pub fn trace_height(n: usize) -> usize {
        (n.max(1) * NUM_ROUNDS).next_power_of_two()
    }

    /// `log2` of [`Self::trace_height`].
    pub fn degree_bits(n: usize) -> usize {
        Self::trace_height(n).trailing_zeros() as usize
    }
}

/// Keccak-f of the all-zero state: the output of every padding permutation.
fn zero_perm_output() -> &'static State {
    static OUT: OnceLock<State> = OnceLock::new();
    OUT.get_or_init(|| keccak_f(&[0; 25]))
}

fn write_limbs<F: Field>(row: &mut [F], state: &State) {
    for (lane, value) in state.iter().enumerate() {
        for limb in 0..U64_LIMBS {
            row[lane * U64_LIMBS + limb] = F::from_u16((value >> (16 * limb)) as u16);
        }
    }
}

impl<F: Field> BaseAir<F> for BoundKeccakAir {
    fn width(&self) -> usize {
        NUM_KECCAK_COLS
    }

    fn preprocessed_width(&self) -> usize {
        PREP_WIDTH
    }

    fn preprocessed_trace(&self) -> Option<RowMajorMatrix<F>> {
        let height = Self::trace_height(self.io.len());
        let mut values = F::zero_vec(height * PREP_WIDTH);
        let zero = PermIo { input: [0; 25], output: *zero_perm_output() };
        for (k, first_row) in (0..height).step_by(NUM_ROUNDS).enumerate() {
            let io = self.io.get(k).unwrap_or(&zero);
            let at = first_row * PREP_WIDTH;
            write_limbs(&mut values[at..at + PREP_WIDTH], &io.input);
            let last_row = first_row + NUM_ROUNDS - 1;
            if last_row < height {
                let at = last_row * PREP_WIDTH;
                write_limbs(&mut values[at..at + PREP_WIDTH], &io.output);
            }
        }
        Some(RowMajorMatrix::new(values, PREP_WIDTH))
    }

    fn preprocessed_next_row_columns(&self) -> Vec<usize> {
        Vec::new()
    }
}

impl<AB: AirBuilder> Air<AB> for BoundKeccakAir
where
    AB::F: Field,
{
    fn eval(&self, builder: &mut AB) {
        KeccakAir {}.eval(builder);

        let main = builder.main();
        let local: &KeccakCols<AB::Var> = main.current_slice().borrow();
        let prep = builder.preprocessed().clone();
        let expected = prep.current_slice();
        let first_round = local.step_flags[0];
        let last_round = local.step_flags[NUM_ROUNDS - 1];
        for y in 0..5 {
            for x in 0..5 {
                for limb in 0..U64_LIMBS {
                    let e = expected[(x + 5 * y) * U64_LIMBS + limb];
                    builder.when(first_round).assert_eq(local.preimage[y][x][limb], e);
                    builder.when(last_round).assert_eq(local.a_prime_prime_prime(y, x, limb), e);
                }
            }
        }
    }
}
