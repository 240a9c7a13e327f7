//! Reads Polygon Zero `zero_bin` leader inputs: a JSON array of blocks, each
//! `{block_trace: {trie_pre_images: {combined: {compact: "0x…"}}, txn_info}, other_data:
//! {b_data: {b_meta, b_hashes, withdrawals}, checkpoint_state_trie_root, …}}`.
//!
//! The pre-state comes as Erigon's compact "block witness" (type 1, the format
//! 0xPolygonZero/zk_evm's `trace_decoder` reads; Erigon's spec is
//! `docs/programmers_guide/witness_formal_spec.md`). [`decode_compact`] runs it and
//! returns the Merkle-Patricia trie nodes (state trie and storage tries) and contract
//! codes; [`parse_input`] does that for every block of an input and applies zero_bin's
//! own check: the first block's pre-state root must equal `checkpoint_state_trie_root`.
//!
//! ```no_run
//! let text = std::fs::read_to_string("witness.json")?;
//! let json: serde_json::Value = serde_json::from_str(&text)?;
//! if proofline_zero_bin::is_zero_bin(&json) {
//!     for block in proofline_zero_bin::parse_input(&json)? {
//!         println!("block {}: {} nodes", block.number, block.pre_state.nodes.len());
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Layout: `cbor` (the CBOR subset) → `wire` (instructions) → `machine` (the stack
//! machine, with `node` for the RLP of trie nodes) → [`decode_compact`]; `json` and
//! `block` read the JSON around it.

mod block;
mod cbor;
mod error;
mod json;
mod machine;
mod node;
mod wire;

use alloy_primitives::{B256, b256};

pub use block::{
    BlockMeta, Checkpoint, MAX_COMPACT_HEX_CHARS, ZeroBinBlock, is_zero_bin, parse_input, parse_input_with,
};
pub use error::{At, CompactError, CompactErrorKind, ZeroBinError};

/// The root of an empty trie: `keccak256(RLP(""))`.
pub const EMPTY_ROOT_HASH: B256 = b256!("56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421");

/// A block's pre-state as decoded from its compact witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreState {
    /// The state trie's root hash: keccak256 of the root node's RLP.
    pub root: B256,
    /// The RLP of every node that something refers to by hash (nodes of 32 bytes or more,
    /// the state root and every storage trie's root), across the state trie and all
    /// storage tries. Each distinct node once; root first, then depth-first pre-order
    /// (children by nibble, an account's storage trie right after its leaf). Nodes under
    /// 32 bytes live embedded in their parents. An empty state gives `[RLP("")]`.
    pub nodes: Vec<Vec<u8>>,
    /// Contract codes carried by CODE instructions, each distinct code once, in stream
    /// order. Codes given only by hash are not here.
    pub codes: Vec<Vec<u8>>,
}

/// Decodes a compact (type 1) witness: a version byte (1; zk_evm also takes 0), then
/// instructions up to the end of the input. The stack must end with exactly one node:
/// the state trie's root (a leaf, extension or branch, or EMPTY_ROOT for an empty state).
pub fn decode_compact(bytes: &[u8]) -> Result<PreState, CompactError> {
    let mut cursor = cbor::Cursor::new(bytes);
    let version = cursor.byte("version").map_err(|_| CompactError {
        offset: 0,
        at: At::Header,
        kind: CompactErrorKind::Empty,
    })?;
    if version > 1 {
        return Err(CompactError { offset: 0, at: At::Header, kind: CompactErrorKind::Version(version) });
    }
    if cursor.is_empty() {
        return Err(CompactError { offset: 1, at: At::Header, kind: CompactErrorKind::NoInstructions });
    }
    let mut machine = machine::Machine::default();
    let mut index = 0;
    while !cursor.is_empty() {
        let start = cursor.pos();
        let at = At::Instruction(index);
        let instruction = wire::read_instruction(&mut cursor).map_err(|(offset, kind)| CompactError {
            offset,
            at,
            kind,
        })?;
        machine.exec(instruction).map_err(|kind| CompactError { offset: start, at, kind })?;
        index += 1;
    }
    machine.finish().map_err(|kind| CompactError { offset: bytes.len(), at: At::End(index), kind })
}
