//! Checks that a block witness holds together before anything is proven.
//!
//! These are the same bindings the proof's wrap step relies on: the header hashes to the
//! block hash, the last witness header is the parent, and the parent's state root is the
//! digest of one of the state nodes. Errors name places in the input's own format.

use alloy_primitives::keccak256;

use super::{BlockWitness, WitnessError, WitnessFormat, header};

/// Where each checked value lives in the input, per format.
struct Paths {
    header: &'static str,
    number: &'static str,
    parent_hash: &'static str,
    headers: &'static str,
    parent_state_root: &'static str,
}

fn paths(format: WitnessFormat) -> Paths {
    match format {
        WitnessFormat::Canonical => Paths {
            header: "block.headerRlp",
            number: "block.number",
            parent_hash: "block.parentHash",
            headers: "witness.headers",
            parent_state_root: "parentStateRoot",
        },
        WitnessFormat::ZeroBin => Paths {
            header: "the --header block header",
            number: "zeroBin[0].other_data.b_data.b_meta.block_number",
            parent_hash: "zeroBin[0].other_data.b_data.b_hashes.prev_hashes[255]",
            headers: "witness headers (a zero_bin witness has none)",
            parent_state_root: "the compact pre-state's root",
        },
        WitnessFormat::EthrexReplay | WitnessFormat::Zkpig => Paths {
            header: "blocks[0].header",
            number: "blocks[0].header.number",
            parent_hash: "blocks[0].header.parentHash",
            headers: if format == WitnessFormat::Zkpig { "witness.ancestors" } else { "witness.headers" },
            parent_state_root: "the parent state root",
        },
    }
}

fn inconsistent(
    path: String,
    found: impl ToString,
    other_path: String,
    expected: impl ToString,
) -> WitnessError {
    WitnessError::Inconsistent { path, found: found.to_string(), other_path, expected: expected.to_string() }
}

pub(crate) fn validate(w: &BlockWitness) -> Result<(), WitnessError> {
    let p = paths(w.format);
    if w.state.is_empty() {
        return Err(WitnessError::EmptyWitness { path: "witness.state".into(), what: "nodes" });
    }
    if w.headers.is_empty() && !w.prev_hashes.is_empty() {
        return validate_with_block_hashes(w, &p);
    }
    let Some(parent_rlp) = w.headers.last() else {
        return Err(WitnessError::EmptyWitness { path: p.headers.into(), what: super::NO_HEADERS });
    };

    check_block_header(w, &p)?;

    // The witness headers form a chain ending at the parent.
    let decoded = w
        .headers
        .iter()
        .enumerate()
        .map(|(i, rlp)| header::decode(rlp, &format!("{}[{i}]", p.headers)))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, (older, newer)) in w.headers.iter().zip(&decoded[1..]).enumerate() {
        let digest = keccak256(older);
        if newer.parent_hash != digest {
            return Err(inconsistent(
                format!("the parentHash in {}[{}]", p.headers, i + 1),
                newer.parent_hash,
                format!("keccak({}[{i}])", p.headers),
                digest,
            ));
        }
    }
    let last = w.headers.len() - 1;
    let parent_digest = keccak256(parent_rlp);
    if parent_digest != w.parent_hash {
        return Err(inconsistent(
            format!("keccak({}[{last}]) (the last header)", p.headers),
            parent_digest,
            format!("the block's parentHash ({})", p.parent_hash),
            w.parent_hash,
        ));
    }
    let parent_state_root = decoded[last].state_root;
    if parent_state_root != w.parent_state_root {
        return Err(inconsistent(
            p.parent_state_root.into(),
            w.parent_state_root,
            format!("the stateRoot in {}[{last}] (the parent)", p.headers),
            parent_state_root,
        ));
    }

    check_root_in_state(w, format!("{}[{last}].stateRoot", p.headers))
}

/// The block header hashes to the block hash and carries the claimed number and parent.
fn check_block_header(w: &BlockWitness, p: &Paths) -> Result<(), WitnessError> {
    let computed = keccak256(&w.header_rlp);
    if computed != w.hash {
        return Err(WitnessError::BlockHashMismatch { computed, claimed: w.hash });
    }
    let head = header::decode(&w.header_rlp, p.header)?;
    if head.number != w.number {
        return Err(inconsistent(
            p.number.into(),
            w.number,
            format!("the number in {}", p.header),
            head.number,
        ));
    }
    if head.parent_hash != w.parent_hash {
        return Err(inconsistent(
            p.parent_hash.into(),
            w.parent_hash,
            format!("the parentHash in {}", p.header),
            head.parent_hash,
        ));
    }
    Ok(())
}

/// A witness anchored by previous block hashes (zero_bin) instead of ancestor headers:
/// the last previous hash is the parent, and the pre-state root is a state node's digest.
fn validate_with_block_hashes(w: &BlockWitness, p: &Paths) -> Result<(), WitnessError> {
    check_block_header(w, p)?;
    let last = w.prev_hashes[w.prev_hashes.len() - 1];
    if last != w.parent_hash {
        return Err(inconsistent(
            p.parent_hash.into(),
            last,
            format!("the parentHash in {}", p.header),
            w.parent_hash,
        ));
    }
    check_root_in_state(w, p.parent_state_root.into())
}

/// The state witness contains the root node of the parent's state trie.
fn check_root_in_state(w: &BlockWitness, path: String) -> Result<(), WitnessError> {
    if !w.state.iter().any(|node| keccak256(node) == w.parent_state_root) {
        return Err(WitnessError::StateRootNotInWitness {
            root: w.parent_state_root,
            path,
            nodes: w.state.len(),
        });
    }
    Ok(())
}
