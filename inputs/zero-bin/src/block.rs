//! zero_bin blocks: the typed fields of `other_data`, the decoded compact pre-state, and
//! the checks zero_bin itself makes before proving.
//!
//! - The first block's pre-state root must equal `checkpoint_state_trie_root` (zero_bin's
//!   "Inconsistent pre-state for first block"). Later blocks are not checked against it:
//!   zero_bin proves the blocks of one input as a chain, a later block's pre-state is its
//!   predecessor's post-state, and the checkpoint stays the state before the first block.
//! - Later blocks must follow their predecessor: number + 1, and the last `prev_hashes`
//!   entry equal to the predecessor's `cur_hash`.
//! - `prev_hashes` holds exactly 256 hashes: zero_bin's `BlockHashes` public values have
//!   256 slots (the BLOCKHASH window), zero-filled before block 256, and its RPC fetcher
//!   always writes 256. A shorter list cannot be proven, so it is rejected here.

use alloy_primitives::{Address, B256, Bloom, U256};
use serde_json::Value;

use crate::error::ZeroBinError;
use crate::json::{Field, type_name};
use crate::{PreState, decode_compact};

/// The largest `compact` string accepted, in hex characters (256 MiB, i.e. 128 MiB of
/// witness); checked before decoding so an absurd input fails at once.
pub const MAX_COMPACT_HEX_CHARS: usize = 256 * 1024 * 1024;

/// `prev_hashes` entries zero_bin requires.
const PREV_HASHES: usize = 256;

/// One block of a zero_bin input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZeroBinBlock {
    /// `other_data.b_data.b_meta.block_number`.
    pub number: u64,
    /// `other_data.b_data.b_hashes.cur_hash`: this block's hash.
    pub cur_hash: B256,
    /// `other_data.b_data.b_hashes.prev_hashes`: the 256 previous block hashes, oldest
    /// first; the last is the parent's hash.
    pub prev_hashes: Vec<B256>,
    /// `other_data.checkpoint_state_trie_root`: the state root before the input's first
    /// block.
    pub checkpoint_state_trie_root: B256,
    /// The rest of `other_data.b_data.b_meta`.
    pub meta: BlockMeta,
    /// `other_data.b_data.withdrawals`: (address, amount in Gwei) as given.
    pub withdrawals: Vec<(Address, U256)>,
    /// `block_trace.trie_pre_images.combined.compact`, decoded.
    pub pre_state: PreState,
}

/// `other_data.b_data.b_meta`, typed (the `block_` prefixes dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMeta {
    pub beneficiary: Address,
    pub timestamp: u64,
    pub gas_limit: u64,
    pub gas_used: u64,
    pub base_fee: U256,
    pub difficulty: U256,
    /// `block_random`: the header's mixHash (prevRandao).
    pub random: B256,
    pub chain_id: u64,
    /// Absent before Cancun.
    pub blob_gas_used: Option<u64>,
    /// Absent before Cancun.
    pub excess_blob_gas: Option<u64>,
    /// Absent before Cancun.
    pub parent_beacon_block_root: Option<B256>,
    /// The logs bloom, from the 8 big-endian 256-bit words of `block_bloom`.
    pub bloom: Bloom,
}

fn is_block(value: &Value) -> bool {
    value.as_object().is_some_and(|o| o.contains_key("block_trace") && o.contains_key("other_data"))
}

/// Cheap detection: a non-empty array whose elements all have `block_trace` and
/// `other_data`, or one such object.
pub fn is_zero_bin(json: &Value) -> bool {
    match json {
        Value::Array(items) => !items.is_empty() && items.iter().all(is_block),
        other => is_block(other),
    }
}

/// Whether the first block of an input is checked against `checkpoint_state_trie_root`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checkpoint {
    /// zero_bin's own check: the first block's pre-state root is the checkpoint root.
    Check,
    /// The input is one block cut from a longer batch, not its first: its pre-state is
    /// its predecessor's post-state, which the (batch-wide) checkpoint does not name.
    Skip,
}

/// Reads a whole zero_bin input (an array of blocks, or one block object), decoding
/// every block's pre-state and checking it (see the module docs for the checks).
pub fn parse_input(json: &Value) -> Result<Vec<ZeroBinBlock>, ZeroBinError> {
    parse_input_with(json, Checkpoint::Check)
}

/// [`parse_input`], saying whether the first block is held to the checkpoint root.
pub fn parse_input_with(json: &Value, checkpoint: Checkpoint) -> Result<Vec<ZeroBinBlock>, ZeroBinError> {
    let blocks = match json {
        Value::Array(items) if items.is_empty() => return Err(ZeroBinError::NoBlocks),
        Value::Array(_) => Field::new(json, String::new()).array()?,
        Value::Object(_) => vec![Field::new(json, String::new())],
        other => return Err(ZeroBinError::NotZeroBin { found: type_name(other) }),
    };
    let mut out: Vec<ZeroBinBlock> = Vec::with_capacity(blocks.len());
    for field in &blocks {
        let block = parse_block(field)?;
        match out.last() {
            None if checkpoint == Checkpoint::Check => check_checkpoint(&block)?,
            None => {}
            Some(previous) => check_follows(previous, &block, field)?,
        }
        out.push(block);
    }
    Ok(out)
}

/// zero_bin's pre-state check for the first block of a chain.
pub(crate) fn check_checkpoint(block: &ZeroBinBlock) -> Result<(), ZeroBinError> {
    if block.pre_state.root == block.checkpoint_state_trie_root {
        return Ok(());
    }
    Err(ZeroBinError::RootMismatch {
        number: block.number,
        computed: block.pre_state.root,
        expected: block.checkpoint_state_trie_root,
    })
}

/// A later block must extend the chain of its predecessor.
pub(crate) fn check_follows(
    previous: &ZeroBinBlock,
    block: &ZeroBinBlock,
    at: &Field<'_>,
) -> Result<(), ZeroBinError> {
    let b_data = at.child_path("other_data.b_data");
    if previous.number.checked_add(1) != Some(block.number) {
        return Err(ZeroBinError::Invalid {
            path: format!("{b_data}.b_meta.block_number"),
            message: format!(
                "block {} does not follow block {} (zero_bin proves the blocks of one input as a chain)",
                block.number, previous.number
            ),
        });
    }
    let parent = block.prev_hashes.last().copied().unwrap_or_default();
    if parent != previous.cur_hash {
        return Err(ZeroBinError::Invalid {
            path: format!("{b_data}.b_hashes.prev_hashes[{}]", PREV_HASHES - 1),
            message: format!(
                "parent hash {parent} != the previous block's cur_hash {} (block {})",
                previous.cur_hash, previous.number
            ),
        });
    }
    Ok(())
}

fn parse_block(block: &Field<'_>) -> Result<ZeroBinBlock, ZeroBinError> {
    let other = block.get("other_data")?;
    let b_data = other.get("b_data")?;
    let b_meta = b_data.get("b_meta")?;
    let b_hashes = b_data.get("b_hashes")?;
    let prev = b_hashes.get("prev_hashes")?.array()?;
    if prev.len() != PREV_HASHES {
        return Err(b_hashes.get("prev_hashes")?.invalid(format!(
            "expected {PREV_HASHES} hashes (zero_bin's BLOCKHASH window, zero-filled before block 256), found {}",
            prev.len()
        )));
    }
    let withdrawals = match b_data.opt("withdrawals")? {
        None => Vec::new(),
        Some(list) => list.array()?.iter().map(withdrawal).collect::<Result<_, _>>()?,
    };
    Ok(ZeroBinBlock {
        number: b_meta.get("block_number")?.u64()?,
        cur_hash: b_hashes.get("cur_hash")?.b256()?,
        prev_hashes: prev.iter().map(Field::b256).collect::<Result<_, _>>()?,
        checkpoint_state_trie_root: other.get("checkpoint_state_trie_root")?.b256()?,
        meta: block_meta(&b_meta)?,
        withdrawals,
        pre_state: pre_state(&block.get("block_trace")?)?,
    })
}

fn pre_state(trace: &Field<'_>) -> Result<PreState, ZeroBinError> {
    let images = trace.get("trie_pre_images")?;
    let Some(combined) = images.opt("combined")? else {
        let message = match images.opt("separate")? {
            Some(_) => "`separate` pre-images are not supported, only `combined.compact`",
            None => "expected `combined.compact`",
        };
        return Err(images.invalid(message));
    };
    let compact = combined.get("compact")?;
    let bytes = compact.hex_bytes(MAX_COMPACT_HEX_CHARS)?;
    decode_compact(&bytes).map_err(|source| ZeroBinError::Compact { path: compact.path.clone(), source })
}

fn withdrawal(item: &Field<'_>) -> Result<(Address, U256), ZeroBinError> {
    match item.array()?.as_slice() {
        [address, amount] => Ok((address.address()?, amount.u256()?)),
        other => Err(item.invalid(format!("expected [address, amount], found {} elements", other.len()))),
    }
}

fn block_meta(m: &Field<'_>) -> Result<BlockMeta, ZeroBinError> {
    let words = m.get("block_bloom")?.array()?;
    if words.len() != 8 {
        let message = format!("expected 8 words of 256 bits, found {}", words.len());
        return Err(m.get("block_bloom")?.invalid(message));
    }
    let mut bloom = Bloom::ZERO;
    for (chunk, word) in bloom.0.chunks_exact_mut(32).zip(&words) {
        chunk.copy_from_slice(&word.u256()?.to_be_bytes::<32>());
    }
    Ok(BlockMeta {
        beneficiary: m.get("block_beneficiary")?.address()?,
        timestamp: m.get("block_timestamp")?.u64()?,
        gas_limit: m.get("block_gaslimit")?.u64()?,
        gas_used: m.get("block_gas_used")?.u64()?,
        base_fee: m.get("block_base_fee")?.u256()?,
        difficulty: m.get("block_difficulty")?.u256()?,
        random: m.get("block_random")?.b256()?,
        chain_id: m.get("block_chain_id")?.u64()?,
        blob_gas_used: m.opt("block_blob_gas_used")?.map(|f| f.u64()).transpose()?,
        excess_blob_gas: m.opt("block_excess_blob_gas")?.map(|f| f.u64()).transpose()?,
        parent_beacon_block_root: m.opt("parent_beacon_block_root")?.map(|f| f.b256()).transpose()?,
        bloom,
    })
}
