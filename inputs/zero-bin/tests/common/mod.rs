//! Test support: the real fixture, a writer for hand-built compact streams (an
//! independent encoder of the wire format, Erigon's key packing included), and an
//! independent reference for roots (`alloy_trie::HashBuilder` plus account RLP via
//! `alloy_rlp`'s derive).

#![allow(dead_code)]

use std::collections::HashSet;

use alloy_primitives::{B256, U256, keccak256};
use alloy_trie::{HashBuilder, Nibbles};

pub const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/mainnet-19807080.polygon-zero-witness.json"
);
pub const HEADER: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/mainnet-19807080.header.json");

pub fn read_json(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The fixture's compact stream, decoded from hex.
pub fn fixture_stream(json: &serde_json::Value) -> Vec<u8> {
    let text = json[0]["block_trace"]["trie_pre_images"]["combined"]["compact"].as_str().unwrap();
    hex::decode(text.strip_prefix("0x").unwrap()).unwrap()
}

/// A compact stream under construction (version 1).
pub struct Stream(pub Vec<u8>);

impl Default for Stream {
    fn default() -> Self {
        Stream(vec![0x01])
    }
}

impl Stream {
    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        match n {
            0..=23 => self.0.push(m | n as u8),
            24..=0xff => self.0.extend([m | 24, n as u8]),
            0x100..=0xffff => {
                self.0.push(m | 25);
                self.0.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.0.push(m | 26);
                self.0.extend((n as u32).to_be_bytes());
            }
            _ => {
                self.0.push(m | 27);
                self.0.extend(n.to_be_bytes());
            }
        }
    }
    fn cbor_bytes(&mut self, bytes: &[u8]) {
        self.head(2, bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }
    pub fn leaf(mut self, key: &[u8], value: &[u8]) -> Self {
        self.0.push(0x00);
        self.cbor_bytes(&erigon_key(key, true));
        self.cbor_bytes(value);
        self
    }
    pub fn extension(mut self, key: &[u8]) -> Self {
        self.0.push(0x01);
        self.cbor_bytes(&erigon_key(key, false));
        self
    }
    pub fn branch(mut self, mask: u64) -> Self {
        self.0.push(0x02);
        self.head(0, mask);
        self
    }
    pub fn hash(mut self, hash: B256) -> Self {
        self.0.push(0x03);
        self.0.extend_from_slice(hash.as_slice());
        self
    }
    pub fn code(mut self, code: &[u8]) -> Self {
        self.0.push(0x04);
        self.cbor_bytes(code);
        self
    }
    pub fn empty_root(mut self) -> Self {
        self.0.push(0x06);
        self
    }
    /// ACCOUNT_LEAF; `code_len` is `Some` when the account has code (CODE or HASH below
    /// the storage item on the stack).
    pub fn account(
        mut self,
        key: &[u8],
        nonce: u64,
        balance: U256,
        code_len: Option<u64>,
        storage: bool,
    ) -> Self {
        self.0.push(0x05);
        self.cbor_bytes(&erigon_key(key, true));
        let flags = u8::from(code_len.is_some())
            | (u8::from(storage) << 1)
            | (u8::from(nonce > 0) << 2)
            | (u8::from(balance > U256::ZERO) << 3);
        self.0.push(flags);
        if nonce > 0 {
            self.head(0, nonce);
        }
        if balance > U256::ZERO {
            let bytes = balance.to_be_bytes_trimmed_vec();
            self.cbor_bytes(&bytes);
        }
        if let Some(len) = code_len {
            self.head(0, len);
        }
        self
    }
}

/// Erigon's key packing: flags (odd, terminator) then nibble pairs; a lone nibble (no
/// terminator) is written as itself.
pub fn erigon_key(nibbles: &[u8], terminated: bool) -> Vec<u8> {
    if nibbles.len() + usize::from(terminated) < 2 {
        return if terminated { vec![0x10] } else { nibbles.to_vec() };
    }
    let mut out = vec![(nibbles.len() % 2) as u8 | (u8::from(terminated) << 1)];
    out.extend(nibbles.chunks(2).map(|pair| (pair[0] << 4) | pair.get(1).copied().unwrap_or(0)));
    out
}

pub fn nibbles_of(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect()
}

#[derive(alloy_rlp::RlpEncodable)]
pub struct Account {
    pub nonce: u64,
    pub balance: U256,
    pub storage_root: B256,
    pub code_hash: B256,
}

pub fn account_rlp(nonce: u64, balance: u64, storage_root: B256, code_hash: B256) -> Vec<u8> {
    alloy_rlp::encode(Account { nonce, balance: U256::from(balance), storage_root, code_hash })
}

/// A subtrie given to the reference builder: a leaf value or a hashed-out node.
pub enum Entry {
    Leaf(Vec<u8>),
    Hashed(B256),
}

/// The reference root of (full key or prefix) -> entry, sorted by key.
pub fn reference_root(mut entries: Vec<(Vec<u8>, Entry)>) -> B256 {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = HashBuilder::default();
    for (key, entry) in entries {
        match entry {
            Entry::Leaf(value) => builder.add_leaf(Nibbles::from_nibbles(&key), &value),
            Entry::Hashed(hash) => builder.add_branch(Nibbles::from_nibbles(&key), hash, false),
        }
    }
    builder.root()
}

/// Every 32-byte string inside an RLP item, recursing into lists and into strings that
/// are themselves RLP lists (leaf payloads such as accounts).
pub fn referenced_hashes(rlp: &[u8], out: &mut HashSet<B256>) {
    let mut buf = rlp;
    while !buf.is_empty() {
        let Ok(header) = alloy_rlp::Header::decode(&mut buf) else { return };
        let (payload, rest) = buf.split_at(header.payload_length.min(buf.len()));
        if header.list {
            referenced_hashes(payload, out);
        } else if payload.len() == 32 {
            out.insert(B256::from_slice(payload));
        } else if payload.first().is_some_and(|b| *b >= 0xc0) {
            referenced_hashes(payload, out);
        }
        buf = rest;
    }
}

pub fn keccak_set(items: &[Vec<u8>]) -> HashSet<B256> {
    items.iter().map(keccak256).collect()
}
