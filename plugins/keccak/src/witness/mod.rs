//! A block and its execution witness, read from the real formats found in the wild.
//!
//! [`parse_block_witness`] reads any of three JSON formats (an ethrex-replay cache, a
//! ZK-PIG prover input, or Proofline's canonical form), detects which one it is, fills a
//! [`BlockWitness`] and [`validates`](BlockWitness::validate) it. Headers given as JSON are
//! rebuilt as alloy `Header`s and RLP-encoded; errors name the failing JSON path.
//! Inputs over the [`limits`] (item and JSON value counts) are rejected before their
//! items are decoded.

mod canonical;
mod error;
mod ethrex;
mod header;
mod json;
pub mod limits;
mod validate;
mod zero_bin;
mod zkpig;

use alloy_primitives::B256;
use serde_json::Value;

pub use error::WitnessError;
pub use zero_bin::{HeaderError, zero_bin_jobs};

/// Which input format a witness was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessFormat {
    /// ethrex-replay cache: `{blocks: [{header, body}], witness: {state, codes, keys, headers}, network}`.
    EthrexReplay,
    /// ZK-PIG prover input: `{version, blocks: [{header, ...}], witness: {state, ancestors, codes}, ...}`.
    Zkpig,
    /// Proofline's canonical form: `{block: {number, hash, parentHash, stateRoot, headerRlp}, parentStateRoot, witness}`.
    Canonical,
    /// A Polygon Zero zero_bin leader input with its header: `{zeroBin: [{block_trace,
    /// other_data}], headers, batchIndex}` (what `proofline-leader --header` sends).
    ZeroBin,
}

/// A block header plus the pre-state witness needed to bind a proof to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockWitness {
    pub format: WitnessFormat,
    pub number: u64,
    /// The block hash claimed by the input (computed from the header where the format has none).
    pub hash: B256,
    /// RLP encoding of the block header; `keccak256(header_rlp) == hash` once validated.
    pub header_rlp: Vec<u8>,
    pub parent_hash: B256,
    /// The parent header's state root: the root of the trie whose nodes are `state`.
    pub parent_state_root: B256,
    /// RLP-encoded Merkle-Patricia trie nodes of the parent's state.
    pub state: Vec<Vec<u8>>,
    /// Contract bytecodes.
    pub codes: Vec<Vec<u8>>,
    /// Touched addresses / storage slots (may be empty).
    pub keys: Vec<Vec<u8>>,
    /// RLP of ancestor headers, oldest first; the last one is the parent.
    pub headers: Vec<Vec<u8>>,
    /// The previous block hashes, oldest first, where the input gives those instead of
    /// ancestor headers (zero_bin: 256, the last one the parent hash); else empty.
    pub prev_hashes: Vec<B256>,
}

/// Bytes of input Keccak-256 absorbs per Keccak-f\[1600\] permutation.
pub const KECCAK_RATE: usize = 136;

/// Keccak-f\[1600\] permutations needed to hash `len` bytes (padding adds at least one byte).
pub fn keccak_permutations(len: usize) -> usize {
    len / KECCAK_RATE + 1
}

impl BlockWitness {
    /// Check that the witness binds to the block: the header hashes to `hash` and names
    /// `parent_hash`; the witness headers chain to the parent, whose stateRoot is
    /// `parent_state_root` and the keccak of a node in `state`; `state` and `headers`
    /// are not empty.
    pub fn validate(&self) -> Result<(), WitnessError> {
        validate::validate(self)
    }

    /// The witness in Proofline's canonical JSON format (pretty-printed), which
    /// [`parse_block_witness`] reads back to an equal value.
    pub fn to_canonical_json(&self) -> String {
        canonical::to_json(self)
    }

    /// Every byte string whose Keccak-256 digest the proof covers but the block hashes:
    /// the block header, then the witness headers, state nodes, codes and keys, in that order.
    pub fn items(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.header_rlp.as_slice()).chain(
            [&self.headers, &self.state, &self.codes, &self.keys].into_iter().flatten().map(Vec::as_slice),
        )
    }

    /// The previous block hashes as one item (32 bytes each, oldest first), if any.
    pub fn block_hashes_item(&self) -> Option<Vec<u8>> {
        (!self.prev_hashes.is_empty()).then(|| self.prev_hashes.iter().flat_map(|h| h.0).collect())
    }

    /// Total Keccak-f\[1600\] permutations to hash every item, the block hashes included.
    pub fn permutation_count(&self) -> usize {
        let hashes = self.block_hashes_item().map_or(0, |item| keccak_permutations(item.len()));
        self.items().map(|item| keccak_permutations(item.len())).sum::<usize>() + hashes
    }
}

/// Read a block witness in any supported format and validate it.
pub fn parse_block_witness(input: &[u8]) -> Result<BlockWitness, WitnessError> {
    if input.trim_ascii().is_empty() {
        return Err(WitnessError::EmptyInput);
    }
    limits::check_json_values(input)?;
    let doc: Value = serde_json::from_slice(input).map_err(|e| WitnessError::from_json(&e))?;
    if proofline_zero_bin::is_zero_bin(&doc) {
        return Err(WitnessError::NeedsHeader);
    }
    let format = detect(&doc)?;
    limits::check_items(&item_list_lens(&doc))?;
    let witness = match format {
        WitnessFormat::EthrexReplay => ethrex::parse(&doc)?,
        WitnessFormat::Zkpig => zkpig::parse(&doc)?,
        WitnessFormat::Canonical => canonical::parse(&doc)?,
        WitnessFormat::ZeroBin => zero_bin::parse(&doc)?,
    };
    witness.validate()?;
    Ok(witness)
}

/// Tell the formats apart by their top-level fields.
fn detect(doc: &Value) -> Result<WitnessFormat, WitnessError> {
    let top = json::object(doc, "")?;
    if top.contains_key("zeroBin") {
        return Ok(WitnessFormat::ZeroBin);
    }
    if top.contains_key("block") {
        return Ok(WitnessFormat::Canonical);
    }
    if top.contains_key("blocks") {
        let has_ancestors =
            top.get("witness").and_then(Value::as_object).is_some_and(|w| w.contains_key("ancestors"));
        let zkpig = has_ancestors || top.contains_key("chainConfig") || top.contains_key("version");
        return Ok(if zkpig { WitnessFormat::Zkpig } else { WitnessFormat::EthrexReplay });
    }
    if top.contains_key("state") && top.contains_key("headers") {
        return Err(WitnessError::UnknownFormat(
            "this is a bare debug_executionWitness result without its block; \
             give it with the block header (canonical form: {block, parentStateRoot, witness})"
                .into(),
        ));
    }
    let fields: Vec<&str> = top.keys().map(String::as_str).take(8).collect();
    Err(WitnessError::UnknownFormat(format!(
        "expected an ethrex-replay cache {{blocks, witness, network}}, a ZK-PIG prover input \
         {{version, blocks, witness: {{ancestors, ..}}, chainConfig}}, a canonical witness \
         {{block, parentStateRoot, witness}} or a zero_bin witness ([{{block_trace, other_data}}], \
         with --header); top-level fields here: [{}]",
        fields.join(", ")
    )))
}

/// Lengths of the item lists under `witness` (every format keeps them there).
fn item_list_lens(doc: &Value) -> Vec<usize> {
    let lists = ["state", "codes", "keys", "headers", "ancestors"];
    let witness = doc.get("witness");
    lists.iter().filter_map(|k| witness?.get(k)?.as_array().map(Vec::len)).collect()
}

/// The single block of a `blocks` list (ethrex and ZK-PIG).
fn only_block(doc: &Value) -> Result<&Value, WitnessError> {
    match json::array(json::field(doc, "", "blocks")?, "blocks")? {
        [block] => Ok(block),
        [] => Err(WitnessError::invalid("blocks", "expected one block, got none")),
        many => Err(WitnessError::invalid(
            "blocks",
            format!(
                "expected one block, got {} (inputs covering several blocks are not supported)",
                many.len()
            ),
        )),
    }
}

const NO_HEADERS: &str = "headers (the parent header is required)";

/// The state root of the last (parent) header of `headers`, found at `path`.
fn parent_state_root(headers: &[Vec<u8>], path: &str) -> Result<B256, WitnessError> {
    let Some(parent) = headers.last() else {
        return Err(WitnessError::EmptyWitness { path: path.into(), what: NO_HEADERS });
    };
    let at = json::index(path, headers.len() - 1);
    Ok(header::decode(parent, &at)?.state_root)
}
