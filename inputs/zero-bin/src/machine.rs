//! The stack machine that turns compact witness instructions into trie nodes (Erigon's
//! "block witness" substitution rules, as zk_evm's `trace_decoder` executes them).
//!
//! - LEAF, HASH, CODE and EMPTY_ROOT push one item.
//! - EXTENSION pops its child (a branch or a HASH).
//! - BRANCH pops one item per set mask bit; the deepest popped item is the lowest nibble.
//! - ACCOUNT_LEAF pops its storage trie (a node, HASH of the storage root or EMPTY_ROOT)
//!   when the storage flag is set, and below that its code (CODE, or HASH of the code)
//!   when the code flag is set. No storage flag means the empty storage root.
//!
//! Every node's RLP is computed as it is built, so the result is the nodes themselves.
//! Two consistency checks run on the way: a subtrie never mixes account leaves with
//! storage leaves, and every complete key (root to leaf) is 64 nibbles.

use std::collections::HashSet;

use crate::error::CompactErrorKind;
use crate::node;
use crate::wire::{AccountOperands, Instruction};
use crate::{EMPTY_ROOT_HASH, PreState};
use alloy_primitives::{B256, KECCAK256_EMPTY, keccak256};

/// Nibbles in a key of a hashed-key trie.
const KEY_NIBBLES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Leaf,
    Extension,
    Branch,
}

/// Which leaves a subtrie holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only hashed-out parts: could be either trie.
    Hashes,
    /// Account leaves: (part of) the state trie.
    State,
    /// Storage-slot leaves: (part of) a storage trie.
    Storage,
}

/// Nibbles from a node down to the end of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Height {
    Exact(usize),
    /// Below a HASH the depth is unknown (at least 0).
    AtLeast(usize),
}

impl Height {
    fn value(self) -> usize {
        match self {
            Height::Exact(n) | Height::AtLeast(n) => n,
        }
    }
    fn plus(self, n: usize) -> Self {
        match self {
            Height::Exact(h) => Height::Exact(h + n),
            Height::AtLeast(h) => Height::AtLeast(h + n),
        }
    }
}

#[derive(Debug)]
enum Item {
    Node { id: usize, shape: Shape, kind: Kind, height: Height },
    Hash(B256),
    Code { hash: B256, len: usize },
    Empty,
}

impl Item {
    fn describe(&self) -> &'static str {
        match self {
            Item::Node { shape: Shape::Leaf, .. } => "a leaf",
            Item::Node { shape: Shape::Extension, .. } => "an extension",
            Item::Node { shape: Shape::Branch, .. } => "a branch",
            Item::Hash(_) => "HASH",
            Item::Code { .. } => "CODE",
            Item::Empty => "EMPTY_ROOT",
        }
    }
}

/// A node built so far: its RLP, whether something refers to it by hash, and the nodes
/// it contains (trie children and, for accounts, the storage trie's root).
#[derive(Debug)]
struct Built {
    rlp: Vec<u8>,
    by_hash: bool,
    children: Vec<usize>,
}

/// The machine's state between instructions.
#[derive(Debug, Default)]
pub(crate) struct Machine {
    nodes: Vec<Built>,
    stack: Vec<Item>,
    codes: Vec<Vec<u8>>,
    code_hashes: HashSet<B256>,
}

type Step = Result<(), CompactErrorKind>;

fn structure(message: impl Into<String>) -> CompactErrorKind {
    CompactErrorKind::Structure(message.into())
}

impl Machine {
    /// Applies one instruction.
    pub(crate) fn exec(&mut self, instruction: Instruction<'_>) -> Step {
        let name = instruction.name();
        match instruction {
            Instruction::Hash(hash) => self.stack.push(Item::Hash(hash)),
            Instruction::EmptyRoot => self.stack.push(Item::Empty),
            Instruction::Code(code) => {
                let hash = keccak256(code);
                if self.code_hashes.insert(hash) {
                    self.codes.push(code.to_vec());
                }
                self.stack.push(Item::Code { hash, len: code.len() });
            }
            Instruction::Leaf { key, value } => {
                let rlp = node::leaf(&key, &node::storage_payload(value));
                self.push_node(rlp, vec![], Shape::Leaf, Kind::Storage, Height::Exact(key.len()));
            }
            Instruction::Extension { key } => self.extension(name, &key)?,
            Instruction::Branch { mask } => self.branch(name, mask)?,
            Instruction::Account(account) => self.account(name, account)?,
        }
        Ok(())
    }

    fn push_node(&mut self, rlp: Vec<u8>, children: Vec<usize>, shape: Shape, kind: Kind, height: Height) {
        let by_hash = rlp.len() >= 32;
        self.nodes.push(Built { rlp, by_hash, children });
        self.stack.push(Item::Node { id: self.nodes.len() - 1, shape, kind, height });
    }

    fn pop(&mut self, instruction: &'static str, needed: usize) -> Result<Item, CompactErrorKind> {
        let have = self.stack.len();
        self.stack.pop().ok_or(CompactErrorKind::StackUnderflow { instruction, needed, have })
    }

    /// A branch or extension child: its reference, subtrie kind, height and node id.
    fn child(
        &self,
        instruction: &'static str,
        item: &Item,
    ) -> Result<(Vec<u8>, Kind, Height, Option<usize>), CompactErrorKind> {
        match *item {
            Item::Node { id, kind, height, .. } => {
                Ok((node::reference(&self.nodes[id].rlp), kind, height, Some(id)))
            }
            Item::Hash(hash) => Ok((node::hash_reference(&hash), Kind::Hashes, Height::AtLeast(0), None)),
            Item::Code { .. } | Item::Empty => Err(CompactErrorKind::WrongItem {
                instruction,
                expected: "a trie node or HASH",
                found: item.describe(),
            }),
        }
    }

    fn extension(&mut self, name: &'static str, key: &[u8]) -> Step {
        let item = self.pop(name, 1)?;
        if let Item::Node { shape: shape @ (Shape::Leaf | Shape::Extension), .. } = item {
            return Err(structure(format!(
                "EXTENSION over {}: an extension's child must be a branch (or its HASH)",
                if shape == Shape::Leaf { "a leaf" } else { "another extension" }
            )));
        }
        let (child_ref, kind, height, id) = self.child(name, &item)?;
        let height = check_height(height.plus(key.len()))?;
        let rlp = node::extension(key, &child_ref);
        self.push_node(rlp, id.into_iter().collect(), Shape::Extension, kind, height);
        Ok(())
    }

    fn branch(&mut self, name: &'static str, mask: u16) -> Step {
        let count = mask.count_ones() as usize;
        let have = self.stack.len();
        if have < count {
            return Err(CompactErrorKind::StackUnderflow { instruction: name, needed: count, have });
        }
        let items = self.stack.split_off(have - count);
        let mut children: [Option<Vec<u8>>; 16] = Default::default();
        let (mut kind, mut heights, mut ids) = (Kind::Hashes, Vec::with_capacity(count), Vec::new());
        let slots = (0..16).filter(|bit| mask & (1 << bit) != 0);
        for (slot, item) in slots.zip(&items) {
            let (child_ref, child_kind, height, id) = self.child(name, item)?;
            children[slot] = Some(child_ref);
            kind = merge_kinds(kind, child_kind)?;
            heights.push(height);
            ids.extend(id);
        }
        let height = check_height(branch_height(&heights)?)?;
        self.push_node(node::branch(&children), ids, Shape::Branch, kind, height);
        Ok(())
    }

    fn account(&mut self, name: &'static str, a: AccountOperands) -> Step {
        let needed = usize::from(a.has_storage) + usize::from(a.code_len.is_some());
        let (storage_root, storage_node) = if a.has_storage {
            match self.pop(name, needed)? {
                Item::Node { kind: Kind::State, .. } => {
                    return Err(structure("an account's storage trie holds account leaves"));
                }
                Item::Node { id, height, .. } => {
                    check_root_height(height, "storage trie")?;
                    self.nodes[id].by_hash = true;
                    (keccak256(&self.nodes[id].rlp), Some(id))
                }
                Item::Hash(hash) => (hash, None),
                Item::Empty => (EMPTY_ROOT_HASH, None),
                item @ Item::Code { .. } => {
                    let expected = "the account's storage (a trie node, HASH or EMPTY_ROOT)";
                    return Err(CompactErrorKind::WrongItem {
                        instruction: name,
                        expected,
                        found: item.describe(),
                    });
                }
            }
        } else {
            (EMPTY_ROOT_HASH, None)
        };
        let code_hash = match a.code_len {
            None => KECCAK256_EMPTY,
            Some(declared) => match self.pop(name, needed)? {
                Item::Code { hash, len } if declared == len as u64 => hash,
                Item::Code { len, .. } => return Err(CompactErrorKind::CodeLength { declared, actual: len }),
                Item::Hash(hash) => hash,
                item => {
                    let expected = "the account's code (CODE or HASH)";
                    return Err(CompactErrorKind::WrongItem {
                        instruction: name,
                        expected,
                        found: item.describe(),
                    });
                }
            },
        };
        let payload = node::account_payload(a.nonce, a.balance, storage_root, code_hash);
        let rlp = node::leaf(&a.key, &payload);
        self.push_node(
            rlp,
            storage_node.into_iter().collect(),
            Shape::Leaf,
            Kind::State,
            Height::Exact(a.key.len()),
        );
        Ok(())
    }

    /// Checks the final stack and collects the pre-state.
    pub(crate) fn finish(mut self) -> Result<PreState, CompactErrorKind> {
        if self.stack.len() != 1 {
            return Err(CompactErrorKind::FinalStack(self.stack.len()));
        }
        let root_id = match self.stack.pop() {
            Some(Item::Node { kind: Kind::Storage, .. }) => {
                return Err(structure(
                    "the trie's leaves are storage LEAFs, not ACCOUNT_LEAFs: not a state trie",
                ));
            }
            Some(Item::Node { id, height, .. }) => {
                check_root_height(height, "state trie")?;
                id
            }
            Some(Item::Empty) => {
                let empty = vec![alloy_rlp::EMPTY_STRING_CODE];
                return Ok(PreState { root: EMPTY_ROOT_HASH, nodes: vec![empty], codes: self.codes });
            }
            Some(item) => return Err(CompactErrorKind::FinalItem(item.describe())),
            None => return Err(CompactErrorKind::FinalStack(0)),
        };
        self.nodes[root_id].by_hash = true;
        let root = keccak256(&self.nodes[root_id].rlp);
        Ok(PreState { root, nodes: collect_preorder(&mut self.nodes, root_id), codes: self.codes })
    }
}

/// The RLP of every node referred to by hash, root first, depth-first pre-order, each
/// distinct node once (an identical node's subtrie is identical, so it is skipped too).
fn collect_preorder(nodes: &mut [Built], root: usize) -> Vec<Vec<u8>> {
    let (mut out, mut seen, mut todo) = (Vec::new(), HashSet::new(), vec![root]);
    while let Some(id) = todo.pop() {
        if nodes[id].by_hash {
            if !seen.insert(keccak256(&nodes[id].rlp)) {
                continue;
            }
            out.push(std::mem::take(&mut nodes[id].rlp));
        }
        todo.extend(nodes[id].children.iter().rev());
    }
    out
}

fn merge_kinds(a: Kind, b: Kind) -> Result<Kind, CompactErrorKind> {
    match (a, b) {
        (Kind::Hashes, k) | (k, Kind::Hashes) => Ok(k),
        (a, b) if a == b => Ok(a),
        _ => Err(structure("a branch mixes account leaves and storage leaves")),
    }
}

/// A branch's height from its children's: all known ones must agree.
fn branch_height(children: &[Height]) -> Result<Height, CompactErrorKind> {
    let (mut exact, mut least) = (None::<usize>, 0);
    for height in children {
        match *height {
            Height::Exact(h) => match exact {
                Some(e) if e != h => {
                    return Err(structure(format!(
                        "a branch's children end at different depths ({e} and {h} nibbles below it)"
                    )));
                }
                _ => exact = Some(h),
            },
            Height::AtLeast(h) => least = least.max(h),
        }
    }
    match exact {
        Some(e) if least > e => Err(structure(format!(
            "a branch's children end at different depths ({e} and at least {least} nibbles below it)"
        ))),
        Some(e) => Ok(Height::Exact(e + 1)),
        None => Ok(Height::AtLeast(least + 1)),
    }
}

fn check_height(height: Height) -> Result<Height, CompactErrorKind> {
    if height.value() > KEY_NIBBLES {
        return Err(structure(format!(
            "keys below this node would be {}{} nibbles long, more than 64",
            if matches!(height, Height::AtLeast(_)) { "at least " } else { "" },
            height.value()
        )));
    }
    Ok(height)
}

fn check_root_height(height: Height, trie: &str) -> Step {
    match height {
        Height::Exact(h) if h != KEY_NIBBLES => {
            Err(structure(format!("the {trie}'s keys are {h} nibbles long, not 64")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_heights_must_agree() {
        use Height::*;
        assert_eq!(branch_height(&[Exact(3), AtLeast(0), Exact(3)]).unwrap(), Exact(4));
        assert_eq!(branch_height(&[AtLeast(2), AtLeast(5)]).unwrap(), AtLeast(6));
        assert!(branch_height(&[Exact(3), Exact(4)]).is_err());
        assert!(branch_height(&[Exact(3), AtLeast(4)]).is_err());
        assert!(check_height(Exact(65)).is_err());
        assert!(check_root_height(Exact(63), "state trie").is_err());
        assert!(check_root_height(AtLeast(10), "state trie").is_ok());
    }

    #[test]
    fn kinds_do_not_mix() {
        assert_eq!(merge_kinds(Kind::Hashes, Kind::State).unwrap(), Kind::State);
        assert_eq!(merge_kinds(Kind::Storage, Kind::Hashes).unwrap(), Kind::Storage);
        assert!(merge_kinds(Kind::State, Kind::Storage).is_err());
    }
}
