//! End-to-end keccak proving vs Plonky3 called directly on the same permutations.

use std::path::PathBuf;

pub async fn end_to_end(_blocks: &[PathBuf], _lanes: usize) -> anyhow::Result<()> {
    anyhow::bail!("keccak benchmark: waiting for the keccak plugin API")
}
