//! Reference Proofline prover: Plonky3 STARKs of Keccak-f\[1600\] over a block's witness.
//!
//! # Statement
//!
//! The items of a block are `[block header RLP, each witness header RLP (oldest first),
//! each state node, each code, each key]`, and for a zero_bin witness (which has no
//! witness headers) a last item: the 256 previous block hashes, concatenated. For every item, its Keccak-256 digest is
//! computed by the sponge (rate 136 bytes, padding `0x01 .. 0x80`), and every Keccak-f\[1600\]
//! permutation of those sponges is proven with Plonky3 (p3-uni-stark + p3-keccak-air over
//! BabyBear, Poseidon2 Merkle commitments, FRI; see [`config`]).
//!
//! # Binding
//!
//! The stock `KeccakAir` has no public inputs. [`air::BoundKeccakAir`] adds a preprocessed
//! trace holding each permutation's claimed input and output, which the verifier rebuilds
//! from the claimed list; so a leaf STARK proves `output_k = Keccak-f(input_k)` for exactly
//! the claimed list. The verifier derives the inputs from the public items (XOR chaining,
//! per item: `in_0 = block_0`, `in_j = out_{j-1} XOR block_j`) and reads digests from the
//! claimed outputs: it never computes Keccak itself.
//!
//! # Pipeline
//!
//! * [`plan`]: parse and validate the witness, lay all sponge blocks end to end, split them
//!   into segments of at most 1365 permutations (an item may straddle segments).
//! * [`leaf`]: prove a segment. Deterministic: a re-run gives identical bytes.
//! * [`aggregate`]: verify both children (leaf STARKs with the Plonky3 verifier), check
//!   adjacency and sponge continuity, commit to them with Poseidon2 ([`accumulate`]).
//!   This is **verify-and-accumulate, not recursive proving**: the final proof carries every
//!   leaf STARK and the verifier re-checks them all. A recursive fold would be a new plugin
//!   behind the same API.
//! * [`finalize`]: wrap the root into the final proof and verify final proofs.
//!
//! # What a final proof binds
//!
//! Given a `Valid` verdict, assuming Keccak-256 is collision resistant and the STARKs are
//! sound (Plonky3's benchmark FRI parameters: conjectured 1 x 100 query bits + 16 bits of
//! grinding, not a proven-security configuration):
//! * the Keccak-256 of the header item is the block hash in the proof, and the header
//!   decodes (alloy) with the block number in the proof;
//! * the witness headers form a parentHash chain, the last one's digest is the header's
//!   parentHash, and its stateRoot is the parent state root in the proof; or, for a
//!   zero_bin witness (no witness headers), the proof's previous block hashes item ends
//!   in the header's parentHash and the pre-state root is the witness's own (checked
//!   against `checkpoint_state_trie_root` when planning; no parent header binds it);
//! * some state node in the proof has the parent state root as its digest;
//! * the digest of every item in the proof is as proven (every permutation of every item's
//!   sponge is covered, in order, by exactly one verified leaf STARK).
//!
//! It does **not** bind: that the state nodes, codes and keys are the complete or correct
//! pre-state of the block (no trie walk, no code-hash or key-to-account check), anything
//! about the block's execution or post-state, transactions or receipts, or the canonicity
//! of the block (only its hash is bound, not that the chain accepted it). The
//! aggregation commitments are a consistency check, not a succinct proof.

pub mod witness;

pub mod accumulate;
pub mod aggregate;
pub mod air;
pub mod artifact;
pub mod bind;
pub mod challenger;
pub mod config;
pub mod finalize;
pub mod leaf;
pub mod plan;
pub mod plugin;
pub mod sponge;
pub mod stark;
pub mod statement;

pub use plan::{DEFAULT_SEGMENT_SIZE, permutation_inputs};
pub use plugin::KeccakPlugin;
pub use stark::prove_plain;
