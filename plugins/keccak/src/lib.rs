//! Reference Proofline prover: Plonky3 STARKs of Keccak-f[1600] over a block's witness.
