//! Binding proven digests to the block: header hash, parent link, parent state root.
//!
//! The parent is anchored by proven ancestor headers, or (zero_bin witnesses) by the
//! list of previous block hashes; see [`Anchor`].
//!
//! Given the proven output state of every permutation, an item's digest is read from
//! the output of its last permutation ([`crate::sponge::digest`]). No Keccak is computed
//! here: every digest used comes out of a verified STARK.

use alloy_consensus::Header;

use crate::sponge::{State, digest};
use crate::statement::{ItemKind, Statement, full_hex};

/// What the bindings establish, for the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    /// Block number, from the proven header.
    pub number: u64,
    /// Block hash = the proven digest of the header.
    pub hash: [u8; 32],
    /// The header's parentHash = the proven digest of the last witness header.
    pub parent_hash: [u8; 32],
    /// The parent's stateRoot = the proven digest of a state node.
    pub parent_state_root: [u8; 32],
    /// What ties the block to its parent and pre-state.
    pub anchor: Anchor,
}

/// What ties a block to its parent and its pre-state root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Proven ancestor headers: the parent's digest is the parentHash, its stateRoot the
    /// pre-state root.
    ParentHeader,
    /// Previous block hashes (zero_bin), the last of them the parentHash; the pre-state
    /// root is the witness's own (zero_bin's checkpoint), not read from a parent header.
    BlockHashes { count: usize },
}

fn decode_header(rlp: &[u8], what: &str) -> Result<Header, String> {
    alloy_rlp::decode_exact::<Header>(rlp).map_err(|e| format!("{what}: RLP undecodable: {e}"))
}

/// Check the block bindings of `statement` against the proven `outputs` (one per
/// permutation of the job, in order).
pub fn bind(statement: &Statement, outputs: &[State]) -> Result<Bound, String> {
    let ends = statement.last_permutations();
    if ends.last().map_or(0, |&e| e + 1) != outputs.len() as u64 {
        return Err(format!(
            "the items need {} permutations but {} were proven",
            ends.last().map_or(0, |&e| e + 1),
            outputs.len()
        ));
    }
    let digests: Vec<[u8; 32]> = ends.iter().map(|&e| digest(&outputs[e as usize])).collect();
    let items = &statement.items;

    // The header is the block.
    if digests[0] != statement.hash {
        return Err(format!(
            "header digest {} != block hash {}",
            full_hex(&digests[0]),
            full_hex(&statement.hash)
        ));
    }
    let header = decode_header(&items[0].data, "block header")?;
    if header.number != statement.number {
        return Err(format!("block number {} != the header's number {}", statement.number, header.number));
    }

    let hashes: Vec<usize> = (0..items.len()).filter(|&i| items[i].kind == ItemKind::BlockHashes).collect();
    let (root, anchor) = match hashes.as_slice() {
        [] => (bind_parent_header(statement, &header, &digests)?, Anchor::ParentHeader),
        [i] => bind_block_hashes(statement, &header, &items[*i].data)?,
        _ => return Err("more than one block hashes item".into()),
    };

    // The state witness contains the pre-state's root node.
    let found = (0..items.len()).any(|i| items[i].kind == ItemKind::State && digests[i] == root);
    if !found {
        return Err(format!("parent state root {} is not the digest of any state node", full_hex(&root)));
    }
    Ok(Bound {
        number: header.number,
        hash: statement.hash,
        parent_hash: header.parent_hash.0,
        parent_state_root: root,
        anchor,
    })
}

/// The witness headers are a parentHash chain ending at the block's parent, whose
/// stateRoot is the claimed parent state root: that root.
fn bind_parent_header(
    statement: &Statement,
    header: &Header,
    digests: &[[u8; 32]],
) -> Result<[u8; 32], String> {
    let items = &statement.items;
    let ancestors: Vec<usize> =
        (0..items.len()).filter(|&i| items[i].kind == ItemKind::WitnessHeader).collect();
    let mut decoded = Vec::with_capacity(ancestors.len());
    for (j, &i) in ancestors.iter().enumerate() {
        let h = decode_header(&items[i].data, &format!("witness header {j}"))?;
        if j > 0 && h.parent_hash.0 != digests[ancestors[j - 1]] {
            return Err(format!("witness header {j}: parentHash != digest of witness header {}", j - 1));
        }
        decoded.push(h);
    }
    let (Some(&parent_item), Some(parent)) = (ancestors.last(), decoded.last()) else {
        return Err("no witness header: the parent header is required".into());
    };
    if digests[parent_item] != header.parent_hash.0 {
        return Err(format!(
            "parent header digest {} != the block's parentHash {}",
            full_hex(&digests[parent_item]),
            full_hex(&header.parent_hash.0)
        ));
    }
    let root = parent.state_root.0;
    if root != statement.parent_state_root {
        return Err(format!(
            "claimed parent state root {} != the parent header's stateRoot {}",
            full_hex(&statement.parent_state_root),
            full_hex(&root)
        ));
    }
    Ok(root)
}

/// The previous block hashes (zero_bin) end at the block's parentHash; the claimed
/// pre-state root has no parent header to be checked against.
fn bind_block_hashes(
    statement: &Statement,
    header: &Header,
    data: &[u8],
) -> Result<([u8; 32], Anchor), String> {
    if data.is_empty() || !data.len().is_multiple_of(32) {
        return Err(format!("block hashes item: {} bytes, not a list of 32-byte hashes", data.len()));
    }
    let last = &data[data.len() - 32..];
    if last != header.parent_hash.0 {
        return Err(format!(
            "last previous block hash 0x{} != the block's parentHash {}",
            hex::encode(last),
            full_hex(&header.parent_hash.0)
        ));
    }
    Ok((statement.parent_state_root, Anchor::BlockHashes { count: data.len() / 32 }))
}
