//! `proofline-keccak-prover`: the keccak reference prover as a standalone binary that
//! speaks the exec contract (`docs/EXEC.md`), for `--plugin exec --exec-prover`.
//!
//! Its proofs are byte for byte those of the in-process `keccak` plugin.

fn main() -> std::process::ExitCode {
    proofline_exec::prover::main(&proofline_keccak::KeccakPlugin)
}
