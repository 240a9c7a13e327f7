//! Native Keccak-256 sponge arithmetic: padding, absorbing, reading digests.
//!
//! Nothing here is proven; it is how the planner and the workers lay out the
//! permutations whose correctness the STARKs prove, and how verifiers derive the
//! permutation inputs from the public items (XOR chaining) without hashing anything.

use p3_keccak::KeccakF;
use p3_symmetric::Permutation;

/// Keccak-f\[1600\] state: 25 lanes, `state[x + 5 * y]`.
pub type State = [u64; 25];
/// One absorbed block of Keccak-256: 17 lanes (136 bytes, the rate).
pub type Block = [u64; RATE_LANES];

/// Rate of Keccak-256 in bytes.
pub const RATE_BYTES: usize = 136;
/// Rate of Keccak-256 in 64-bit lanes.
pub const RATE_LANES: usize = RATE_BYTES / 8;

/// Apply Keccak-f\[1600\] natively.
pub fn keccak_f(state: &State) -> State {
    let mut out = *state;
    KeccakF.permute_mut(&mut out);
    out
}

/// Number of Keccak-f permutations the Keccak-256 of `len` bytes takes.
pub fn block_count(len: usize) -> usize {
    len / RATE_BYTES + 1
}

/// The padded (pad10*1 with the Keccak domain byte 0x01) blocks of `data`.
pub fn padded_blocks(data: &[u8]) -> Vec<Block> {
    let n = block_count(data.len());
    let mut bytes = vec![0u8; n * RATE_BYTES];
    bytes[..data.len()].copy_from_slice(data);
    bytes[data.len()] ^= 0x01;
    *bytes.last_mut().expect("at least one block") ^= 0x80;
    bytes
        .chunks_exact(RATE_BYTES)
        .map(|chunk| {
            std::array::from_fn(|i| u64::from_le_bytes(chunk[8 * i..8 * i + 8].try_into().expect("8 bytes")))
        })
        .collect()
}

/// Absorb `block` into `state` (XOR into the rate lanes): the next permutation's input.
pub fn absorb(state: &State, block: &Block) -> State {
    let mut next = *state;
    for (lane, b) in next.iter_mut().zip(block) {
        *lane ^= b;
    }
    next
}

/// The Keccak-256 digest read from the state after an item's last permutation.
pub fn digest(state: &State) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, lane) in state[..4].iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&lane.to_le_bytes());
    }
    out
}

/// Keccak-256 computed natively (tests and planning only; verifiers never call it).
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    let state = padded_blocks(data).iter().fold([0u64; 25], |state, block| keccak_f(&absorb(&state, block)));
    digest(&state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_alloy_keccak256() {
        for len in [0usize, 1, 135, 136, 137, 271, 272, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            assert_eq!(keccak256(&data), alloy_primitives::keccak256(&data).0, "len {len}");
            assert_eq!(padded_blocks(&data).len(), block_count(len));
        }
    }
}
