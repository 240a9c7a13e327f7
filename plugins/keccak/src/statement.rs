//! The statement a keccak proof is about: a block's items and their sponge layout.
//!
//! The items are `[block header RLP, witness headers (oldest first), state nodes, codes,
//! keys]`. Their Keccak-256 sponges, laid end to end, form one stream of absorbed blocks
//! ([`SpongeBlock`]); permutation `k` of the job absorbs block `k` of that stream. Both
//! the planner and every verifier derive the stream from the items alone.

use serde::{Deserialize, Serialize};

use crate::sponge::{self, Block, State};
use crate::witness::BlockWitness;

/// What an item is. Items appear in this order in a [`Statement`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ItemKind {
    /// The block header (RLP); exactly one, first.
    Header,
    /// An ancestor header (RLP), oldest first; the last one is the parent.
    WitnessHeader,
    /// A state trie node of the parent's state (RLP).
    State,
    /// A contract bytecode.
    Code,
    /// A touched key (address or storage slot).
    Key,
    /// The previous block hashes, 32 bytes each, oldest first (the last is the parent
    /// hash): what a zero_bin witness gives instead of ancestor headers. At most one,
    /// last, and only without witness headers. (Declared last: proofs encode the kind
    /// by its position, so older proofs still decode.)
    BlockHashes,
}

impl ItemKind {
    /// Short human name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::WitnessHeader => "witness header",
            Self::State => "state node",
            Self::Code => "code",
            Self::Key => "key",
            Self::BlockHashes => "block hashes item",
        }
    }
}

/// One byte string whose Keccak-256 digest the proof establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What the bytes are.
    pub kind: ItemKind,
    /// The bytes whose Keccak-256 is proven.
    pub data: Vec<u8>,
}

/// The public statement of a job: the block's identity and all its items.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Block number (as claimed; checked against the decoded header).
    pub number: u64,
    /// Block hash (as claimed; checked against the proven header digest).
    pub hash: [u8; 32],
    /// The parent's state root (as claimed; checked against the parent header and state).
    pub parent_state_root: [u8; 32],
    /// Every item, in [`ItemKind`] order.
    pub items: Vec<Item>,
}

impl Statement {
    /// The statement of a (validated) witness.
    pub fn from_witness(w: &BlockWitness) -> Self {
        let mut items = vec![Item { kind: ItemKind::Header, data: w.header_rlp.clone() }];
        let groups = [
            (ItemKind::WitnessHeader, &w.headers),
            (ItemKind::State, &w.state),
            (ItemKind::Code, &w.codes),
            (ItemKind::Key, &w.keys),
        ];
        for (kind, group) in groups {
            items.extend(group.iter().map(|data| Item { kind, data: data.clone() }));
        }
        if let Some(data) = w.block_hashes_item() {
            items.push(Item { kind: ItemKind::BlockHashes, data });
        }
        Self { number: w.number, hash: w.hash.0, parent_state_root: w.parent_state_root.0, items }
    }

    /// Total number of Keccak-f permutations over all items.
    pub fn permutation_count(&self) -> u64 {
        self.items.iter().map(|i| sponge::block_count(i.data.len()) as u64).sum()
    }

    /// The absorbed-block stream of all items, in order.
    pub fn block_stream(&self) -> Vec<SpongeBlock> {
        let mut out = Vec::with_capacity(self.permutation_count() as usize);
        for item in &self.items {
            for (i, lanes) in sponge::padded_blocks(&item.data).into_iter().enumerate() {
                out.push(SpongeBlock { new_item: i == 0, lanes });
            }
        }
        out
    }

    /// For each item, the index (in the job) of its last permutation, whose output state
    /// holds the item's digest.
    pub fn last_permutations(&self) -> Vec<u64> {
        let mut end = 0u64;
        self.items
            .iter()
            .map(|i| {
                end += sponge::block_count(i.data.len()) as u64;
                end - 1
            })
            .collect()
    }

    /// Check the item kinds are in order with one header, at least one state node, and
    /// the parent anchored either by witness headers or by one block hashes item.
    pub fn check_shape(&self) -> Result<(), String> {
        let count = |k| self.items.iter().filter(|i| i.kind == k).count();
        if self.items.first().map(|i| i.kind) != Some(ItemKind::Header) || count(ItemKind::Header) != 1 {
            return Err("items: the block header must be the first and only header item".into());
        }
        if let Some(i) = self.items.windows(2).position(|w| w[0].kind > w[1].kind) {
            return Err(format!("items: item {} is out of kind order", i + 1));
        }
        match (count(ItemKind::WitnessHeader), count(ItemKind::BlockHashes)) {
            (0, 0) => return Err("items: no witness header (the parent header is required)".into()),
            (0, 1) | (1.., 0) => {}
            (0, _) => return Err("items: more than one block hashes item".into()),
            (1.., 1..) => return Err("items: both witness headers and block hashes".into()),
        }
        if count(ItemKind::State) == 0 {
            return Err("items: no state node".into());
        }
        Ok(())
    }

    /// Counts per kind, for messages: "1 header, 1 witness header, 868 state nodes, ...".
    pub fn describe_items(&self) -> String {
        let kinds =
            [ItemKind::Header, ItemKind::WitnessHeader, ItemKind::State, ItemKind::Code, ItemKind::Key];
        let hashes = self.items.iter().find(|i| i.kind == ItemKind::BlockHashes);
        kinds
            .iter()
            .map(|&k| {
                let n = self.items.iter().filter(|i| i.kind == k).count();
                format!("{n} {}{}", k.name(), if n == 1 { "" } else { "s" })
            })
            .chain(hashes.map(|i| format!("{} previous block hashes", i.data.len() / 32)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One absorbed block of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpongeBlock {
    /// True when this block is the first of an item (the sponge restarts from zero).
    pub new_item: bool,
    /// The padded message block (17 lanes).
    pub lanes: Block,
}

impl SpongeBlock {
    /// The permutation input for this block, given the sponge state before it (the
    /// previous permutation's output; ignored when the block starts an item).
    pub fn input(&self, previous_output: &State) -> State {
        if self.new_item {
            sponge::absorb(&[0; 25], &self.lanes)
        } else {
            sponge::absorb(previous_output, &self.lanes)
        }
    }
}

/// Short form of a 32-byte hash for summaries: `0x0497…971e`.
pub fn short_hex(bytes: &[u8; 32]) -> String {
    let h = hex::encode(bytes);
    format!("0x{}…{}", &h[..4], &h[60..])
}

/// Full `0x`-prefixed hex of a 32-byte hash.
pub fn full_hex(bytes: &[u8; 32]) -> String {
    format!("0x{}", hex::encode(bytes))
}
