//! Invalid compact streams: each must fail with the right kind, byte offset and
//! instruction, never panic.

mod common;

use alloy_primitives::{U256, keccak256};
use common::{Stream, nibbles_of};
use proofline_zero_bin::{At, CompactError, CompactErrorKind, decode_compact};

fn key(seed: &str) -> Vec<u8> {
    nibbles_of(keccak256(seed.as_bytes()).as_slice())
}

fn err(bytes: &[u8]) -> CompactError {
    decode_compact(bytes).expect_err("the stream should be rejected")
}

fn structure_message(e: &CompactError) -> &str {
    match &e.kind {
        CompactErrorKind::Structure(message) => message,
        other => panic!("expected a structure error, got {other:?}"),
    }
}

#[test]
fn header_problems() {
    assert_eq!(
        err(&[]).to_string(),
        "compact stream byte 0 (header): the stream is empty (expected a version byte)"
    );
    assert_eq!(err(&[2, 6]).kind, CompactErrorKind::Version(2));
    let e = err(&[1]);
    assert_eq!((e.offset, e.at, e.kind), (1, At::Header, CompactErrorKind::NoInstructions));
}

#[test]
fn unknown_and_unsupported_opcodes_are_named() {
    let e = err(&[1, 0x09]);
    assert_eq!(e.to_string(), "compact stream byte 1 (instruction 0): unknown opcode 0x09");
    let valid = Stream::default().account(&key("a"), 1, U256::ZERO, None, false).0;
    for (op, name) in [(0xbb, "NEW_TRIE"), (0x07, "SMT_LEAF")] {
        let mut bytes = valid.clone();
        bytes.push(op);
        let e = err(&bytes);
        assert_eq!((e.offset, e.at), (valid.len(), At::Instruction(1)));
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn truncated_operands_say_where_and_how_much() {
    let h = keccak256("h");
    let mut bytes = Stream::default().hash(h).0;
    bytes.truncate(20);
    let e = err(&bytes);
    assert_eq!((e.offset, e.at), (2, At::Instruction(0)));
    assert_eq!(e.kind, CompactErrorKind::Truncated { what: "hash", needed: 32, available: 18 });
    // A CODE whose CBOR length claims 4 GiB: rejected at the length, nothing allocated.
    let e = err(&[1, 0x04, 0x5a, 0xff, 0xff, 0xff, 0xff, 0x00]);
    assert_eq!(e.offset, 7);
    assert_eq!(e.kind, CompactErrorKind::Truncated { what: "code", needed: 0xffff_ffff, available: 1 });
    // Not a byte string where one is expected.
    let e = err(&[1, 0x04, 0x01]);
    assert!(matches!(e.kind, CompactErrorKind::Cbor { what: "code", .. }), "{e}");
}

#[test]
fn branch_masks_and_stack_underflow() {
    let h = keccak256("h");
    let e = err(&Stream::default().hash(h).branch(0b11).0);
    assert_eq!((e.offset, e.at), (34, At::Instruction(1)));
    assert_eq!(e.kind, CompactErrorKind::StackUnderflow { instruction: "BRANCH", needed: 2, have: 1 });
    assert_eq!(
        e.to_string(),
        "compact stream byte 34 (instruction 1): BRANCH needs 2 stack items but the stack holds 1"
    );
    assert!(matches!(
        err(&Stream::default().hash(h).branch(0x1_0000).0).kind,
        CompactErrorKind::BranchMask(..)
    ));
    assert!(matches!(err(&Stream::default().hash(h).branch(0).0).kind, CompactErrorKind::BranchMask(0, _)));
    let e = err(&Stream::default().extension(&[1]).0);
    assert_eq!(e.kind, CompactErrorKind::StackUnderflow { instruction: "EXTENSION", needed: 1, have: 0 });
}

#[test]
fn the_final_stack_must_hold_one_trie_root() {
    let h = keccak256("h");
    let e = err(&Stream::default().hash(h).hash(h).0);
    assert_eq!((e.offset, e.at, e.kind.clone()), (67, At::End(2), CompactErrorKind::FinalStack(2)));
    assert_eq!(
        e.to_string(),
        "compact stream byte 67 (end of stream, after 2 instructions): the stack must end with exactly one trie node, it holds 2 items"
    );
    assert_eq!(err(&Stream::default().hash(h).0).kind, CompactErrorKind::FinalItem("HASH"));
    assert_eq!(err(&Stream::default().code(&[1]).0).kind, CompactErrorKind::FinalItem("CODE"));
    // Trailing bytes after a complete trie are instructions too.
    let mut bytes = Stream::default().account(&key("a"), 1, U256::ZERO, None, false).hash(h).0;
    assert_eq!(err(&bytes).kind, CompactErrorKind::FinalStack(2));
    bytes.push(0x03);
    assert!(matches!(err(&bytes).kind, CompactErrorKind::Truncated { what: "hash", .. }));
}

#[test]
fn stack_items_of_the_wrong_type() {
    let h = keccak256("h");
    let e = err(&Stream::default().code(&[1]).hash(h).branch(0b11).0);
    assert_eq!(
        e.kind,
        CompactErrorKind::WrongItem { instruction: "BRANCH", expected: "a trie node or HASH", found: "CODE" }
    );
    let e = err(&Stream::default().empty_root().hash(h).branch(0b11).0);
    assert!(matches!(e.kind, CompactErrorKind::WrongItem { found: "EMPTY_ROOT", .. }), "{e}");
    // Code flag set but the item below the storage is a leaf.
    let k = key("a");
    let e = err(&Stream::default()
        .account(&k, 1, U256::ZERO, None, false)
        .empty_root()
        .account(&k, 1, U256::ZERO, Some(1), true)
        .0);
    assert!(
        matches!(e.kind, CompactErrorKind::WrongItem { instruction: "ACCOUNT_LEAF", found: "a leaf", .. }),
        "{e}"
    );
    // The declared code length must match the CODE.
    let e = err(&Stream::default().code(&[1, 2, 3]).account(&k, 1, U256::ZERO, Some(4), false).0);
    assert_eq!(e.kind, CompactErrorKind::CodeLength { declared: 4, actual: 3 });
}

#[test]
fn trie_structure_is_checked() {
    let (k, slot) = (key("acct"), key("slot"));
    // A storage leaf where the state trie should be.
    let e = err(&Stream::default().leaf(&slot, &[1]).0);
    assert!(structure_message(&e).contains("not a state trie"), "{e}");
    // An account leaf inside a storage trie.
    let inner =
        Stream::default().account(&k[1..], 1, U256::ZERO, None, false).hash(keccak256("x")).branch(0b11);
    let e = err(&inner.account(&k, 1, U256::ZERO, None, true).0);
    assert!(structure_message(&e).contains("storage trie holds account leaves"), "{e}");
    // Account and storage leaves under one branch.
    let e = err(&Stream::default()
        .account(&k[1..], 1, U256::ZERO, None, false)
        .leaf(&slot[1..], &[1])
        .branch(0b11)
        .0);
    assert!(structure_message(&e).contains("mixes"), "{e}");
    // Keys that are not 64 nibbles.
    let e = err(&Stream::default().account(&k[..10], 1, U256::ZERO, None, false).0);
    assert!(structure_message(&e).contains("10 nibbles long, not 64"), "{e}");
    let e = err(&Stream::default()
        .account(&k[1..], 1, U256::ZERO, None, false)
        .account(&k[2..], 1, U256::ZERO, None, false)
        .branch(0b11)
        .0);
    assert!(structure_message(&e).contains("different depths"), "{e}");
    // An extension over a leaf.
    let e = err(&Stream::default().account(&k[2..], 1, U256::ZERO, None, false).extension(&[1, 2]).0);
    assert!(structure_message(&e).contains("EXTENSION over a leaf"), "{e}");
}

#[test]
fn operand_values_are_checked() {
    let k = key("a");
    // Storage values are trimmed, non-zero, at most 32 bytes.
    for bad in [&[][..], &[0, 1], &[1; 33]] {
        let e = err(&Stream::default().leaf(&k, bad).0);
        assert!(matches!(e.kind, CompactErrorKind::StorageValue { .. }), "{e}");
    }
    // Unknown account flags.
    let mut bytes = Stream::default().account(&k, 0, U256::ZERO, None, false).0;
    *bytes.last_mut().unwrap() = 0x30;
    assert_eq!(err(&bytes).kind, CompactErrorKind::AccountFlags(0x30));
    // An extension key with the leaf terminator; a key over 64 nibbles.
    let mut bytes = vec![1, 0x01, 0x42, 0x02, 0x12];
    assert!(matches!(err(&bytes).kind, CompactErrorKind::Key { what: "extension", .. }));
    bytes = vec![1, 0x00, 0x58, 34, 0x02];
    bytes.extend([0x11; 33]);
    assert!(err(&bytes).to_string().contains("66 nibbles"));
}
