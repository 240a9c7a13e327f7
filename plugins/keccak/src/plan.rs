//! Planning: from a block witness to segments of at most `segment_size` permutations.

use proofline_plugin::{Plan, SegmentSpec};

use crate::artifact::{SegmentPayload, encode};
use crate::leaf::native_io;
use crate::sponge::keccak_f;
use crate::statement::{Statement, short_hex};
use crate::witness::BlockWitness;

/// Default permutations per segment: 1365 x 24 rows = 32 760 rows, just under the 2^15-row
/// trace Plonky3 pads every segment to (a trace is always a power of two high). One more
/// permutation would double the trace to 2^16 rows and nearly double the proving time,
/// so 1365 fills the trace best. It proves in a few seconds on one CPU core and keeps a
/// leaf around 1.5 MB.
pub const DEFAULT_SEGMENT_SIZE: u64 = 1365;

/// Largest accepted segment: 10 922 x 24 rows fit in 2^18 rows. The main trace is 2633
/// BabyBear columns wide, so 2^18 rows are 2.7 GB and about three times that while proving
/// (LDE with blowup 2, Merkle tree); larger segments would exhaust a worker's memory.
pub const MAX_SEGMENT_SIZE: u64 = (1 << 18) / 24;

/// Split the witness's permutations into segments of at most `segment_size`.
///
/// An item may be split across segments; the sponge state at the split is computed here
/// natively and handed to the next segment as its `carry_in`.
pub fn plan_witness(witness: &BlockWitness, segment_size: u64) -> Result<Plan, String> {
    if segment_size == 0 || segment_size > MAX_SEGMENT_SIZE {
        return Err(format!("segment size {segment_size} out of range 1..={MAX_SEGMENT_SIZE} permutations"));
    }
    let statement = Statement::from_witness(witness);
    let stream = statement.block_stream();
    let mut segments = Vec::new();
    let mut state = [0u64; 25];
    for (index, chunk) in stream.chunks(segment_size as usize).enumerate() {
        let carry_in = if chunk[0].new_item { [0; 25] } else { state };
        let payload = SegmentPayload {
            segment: index as u32,
            perm_start: index as u64 * segment_size,
            carry_in,
            blocks: chunk.to_vec(),
        };
        if let Some(last) = native_io(&carry_in, chunk).last() {
            state = last.output;
        }
        segments.push(SegmentSpec { cost: chunk.len() as u64, payload: encode(&payload) });
    }
    let summary = format!(
        "block {} {}: {} Keccak-f over {} items in {} segments",
        statement.number,
        short_hex(&statement.hash),
        stream.len(),
        statement.items.len(),
        segments.len()
    );
    let name = format!("{}-{}", statement.number, &hex::encode(statement.hash)[..8]);
    Ok(Plan { segments: segments.into(), meta: encode(&statement), summary, name })
}

/// Every Keccak-f input of the witness's items, in proof order (for benchmarks: the same
/// permutations [`crate::stark::prove_plain`] can prove without the binding).
pub fn permutation_inputs(witness: &BlockWitness) -> Vec<[u64; 25]> {
    let mut state = [0u64; 25];
    Statement::from_witness(witness)
        .block_stream()
        .iter()
        .map(|block| {
            let input = block.input(&state);
            state = keccak_f(&input);
            input
        })
        .collect()
}
