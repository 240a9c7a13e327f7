//! The instruction layer of the compact witness: one opcode byte, then its operands.
//!
//! | opcode | instruction | operands |
//! |---|---|---|
//! | 0x00 | LEAF | CBOR(key), CBOR(value bytes): a storage slot, the value trimmed big-endian |
//! | 0x01 | EXTENSION | CBOR(key) |
//! | 0x02 | BRANCH | CBOR(uint mask): bit i set = child i present |
//! | 0x03 | HASH | 32 raw bytes |
//! | 0x04 | CODE | CBOR(code bytes) |
//! | 0x05 | ACCOUNT_LEAF | CBOR(key), flags byte, [CBOR(uint nonce)], [CBOR(balance bytes)], [CBOR(uint code length)] |
//! | 0x06 | EMPTY_ROOT | none |
//! | 0x07 | SMT_LEAF | rejected: type 2 (SMT) witnesses |
//! | 0xBB | NEW_TRIE | rejected: forests of several tries |
//!
//! Keys are CBOR byte strings: a flags byte (bit 0: odd number of nibbles, bit 1: the
//! key ended with Erigon's 0x10 terminator), then the nibbles packed two to a byte, the
//! last byte's low half zero when odd. Erigon writes a key of a single nibble as that one
//! byte with no flags (so `[0x10]` alone is an empty terminated key).

use alloy_primitives::{B256, U256};

use crate::cbor::{Cursor, ReadError};
use crate::error::CompactErrorKind;

/// One decoded instruction; byte operands borrow from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Instruction<'a> {
    Leaf { key: Vec<u8>, value: &'a [u8] },
    Extension { key: Vec<u8> },
    Branch { mask: u16 },
    Hash(B256),
    Code(&'a [u8]),
    Account(AccountOperands),
    EmptyRoot,
}

/// The operands of ACCOUNT_LEAF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccountOperands {
    pub key: Vec<u8>,
    pub nonce: u64,
    pub balance: U256,
    pub has_storage: bool,
    /// `Some(declared code length)` when the account has code (u64::MAX when the code
    /// is given only by its hash).
    pub code_len: Option<u64>,
}

impl Instruction<'_> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Instruction::Leaf { .. } => "LEAF",
            Instruction::Extension { .. } => "EXTENSION",
            Instruction::Branch { .. } => "BRANCH",
            Instruction::Hash(_) => "HASH",
            Instruction::Code(_) => "CODE",
            Instruction::Account(_) => "ACCOUNT_LEAF",
            Instruction::EmptyRoot => "EMPTY_ROOT",
        }
    }
}

const FLAG_CODE: u8 = 0x01;
const FLAG_STORAGE: u8 = 0x02;
const FLAG_NONCE: u8 = 0x04;
const FLAG_BALANCE: u8 = 0x08;

/// Reads the instruction at the cursor (its opcode included).
pub(crate) fn read_instruction<'a>(c: &mut Cursor<'a>) -> Result<Instruction<'a>, ReadError> {
    let start = c.pos();
    let opcode = c.byte("opcode")?;
    let unsupported = |name, why| Err((start, CompactErrorKind::Unsupported { opcode, name, why }));
    Ok(match opcode {
        0x00 => {
            let key = read_key(c, KeyRole::Leaf)?;
            let at = c.pos();
            let value = c.bytes("leaf value")?;
            check_storage_value(value).map_err(|message| {
                (at, CompactErrorKind::StorageValue { value: short_hex(value), message })
            })?;
            Instruction::Leaf { key, value }
        }
        0x01 => Instruction::Extension { key: read_key(c, KeyRole::Extension)? },
        0x02 => {
            let at = c.pos();
            let mask = c.uint("branch mask")?;
            Instruction::Branch { mask: check_mask(mask).map_err(|e| (at, e))? }
        }
        0x03 => Instruction::Hash(B256::from(c.array32("hash")?)),
        0x04 => Instruction::Code(c.bytes("code")?),
        0x05 => Instruction::Account(read_account(c)?),
        0x06 => Instruction::EmptyRoot,
        0x07 => return unsupported("SMT_LEAF", "it belongs to type 2 (SMT) witnesses, not type 1 (MPT)"),
        0xbb => return unsupported("NEW_TRIE", "zero_bin takes a single trie, not a forest"),
        _ => return Err((start, CompactErrorKind::UnknownOpcode(opcode))),
    })
}

fn read_account(c: &mut Cursor<'_>) -> Result<AccountOperands, ReadError> {
    let key = read_key(c, KeyRole::Account)?;
    let at = c.pos();
    let flags = c.byte("account flags")?;
    if flags & !(FLAG_CODE | FLAG_STORAGE | FLAG_NONCE | FLAG_BALANCE) != 0 {
        return Err((at, CompactErrorKind::AccountFlags(flags)));
    }
    let nonce = if flags & FLAG_NONCE != 0 { c.uint("account nonce")? } else { 0 };
    let balance = if flags & FLAG_BALANCE != 0 {
        let at = c.pos();
        let bytes = c.bytes("account balance")?;
        U256::try_from_be_slice(bytes).ok_or((at, CompactErrorKind::BalanceTooLong(bytes.len())))?
    } else {
        U256::ZERO
    };
    let code_len = if flags & FLAG_CODE != 0 { Some(c.uint("account code length")?) } else { None };
    Ok(AccountOperands { key, nonce, balance, has_storage: flags & FLAG_STORAGE != 0, code_len })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRole {
    Leaf,
    Account,
    Extension,
}

fn read_key(c: &mut Cursor<'_>, role: KeyRole) -> Result<Vec<u8>, ReadError> {
    let (what, what_cbor) = match role {
        KeyRole::Leaf => ("leaf", "leaf key"),
        KeyRole::Account => ("account leaf", "account leaf key"),
        KeyRole::Extension => ("extension", "extension key"),
    };
    let at = c.pos();
    let raw = c.bytes(what_cbor)?;
    let (nibbles, terminated) =
        decode_key(raw).map_err(|message| (at, CompactErrorKind::Key { what, message }))?;
    let problem = match role {
        KeyRole::Extension if terminated => Some("an extension key cannot carry the leaf terminator"),
        KeyRole::Extension if nibbles.is_empty() => Some("an extension key cannot be empty"),
        _ => None,
    };
    match problem {
        Some(message) => Err((at, CompactErrorKind::Key { what, message: message.to_owned() })),
        None => Ok(nibbles),
    }
}

/// Decodes a key operand into nibbles (each 0..=15) and whether the terminator flag was
/// set. At most 64 nibbles: keys are paths in tries keyed by 32-byte hashes.
pub(crate) fn decode_key(raw: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let (nibbles, terminated) = match raw {
        [] => (Vec::new(), false),
        [single] if *single < 0x10 => (vec![*single], false),
        [0x10] => (Vec::new(), true),
        [single] => return Err(format!("single-byte key {single:#04x} is not a nibble")),
        [flags, packed @ ..] => {
            if flags & !0x03 != 0 {
                return Err(format!(
                    "flags byte {flags:#04x} has unknown bits (known: 0x01 odd, 0x02 terminator)"
                ));
            }
            let mut nibbles: Vec<u8> = packed.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect();
            if flags & 0x01 != 0 && nibbles.pop() != Some(0) {
                return Err("odd-length key whose padding nibble is not 0".to_owned());
            }
            (nibbles, flags & 0x02 != 0)
        }
    };
    if nibbles.len() > 64 {
        return Err(format!("{} nibbles, more than the 64 of a hashed key", nibbles.len()));
    }
    Ok((nibbles, terminated))
}

/// Branch masks are CBOR integers with one bit per child; at least one child.
fn check_mask(mask: u64) -> Result<u16, CompactErrorKind> {
    match u16::try_from(mask) {
        Err(_) => Err(CompactErrorKind::BranchMask(mask, "bits above 15 set (a branch has 16 children)")),
        Ok(0) => Err(CompactErrorKind::BranchMask(mask, "no children")),
        Ok(mask) => Ok(mask),
    }
}

/// A storage slot value as the trie holds it: a non-zero U256, big-endian, trimmed.
fn check_storage_value(value: &[u8]) -> Result<(), &'static str> {
    match value {
        [] => Err("is empty (zero slots are not in the trie)"),
        [0, ..] => Err("has a leading zero byte (values are trimmed big-endian)"),
        _ if value.len() > 32 => Err("is longer than the 32 bytes of a U256"),
        _ => Ok(()),
    }
}

fn short_hex(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(40)];
    let more = if bytes.len() > shown.len() { format!("... ({} bytes)", bytes.len()) } else { String::new() };
    format!("0x{}{more}", hex::encode(shown))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_erigon_packing() {
        assert_eq!(decode_key(&[0x07]).unwrap(), (vec![7], false));
        assert_eq!(decode_key(&[0x10]).unwrap(), (vec![], true));
        assert_eq!(decode_key(&[]).unwrap(), (vec![], false));
        assert_eq!(decode_key(&[0x00, 0xab, 0xcd]).unwrap(), (vec![0xa, 0xb, 0xc, 0xd], false));
        assert_eq!(decode_key(&[0x03, 0xab, 0xc0]).unwrap(), (vec![0xa, 0xb, 0xc], true));
        assert_eq!(decode_key(&[0x02, 0x12]).unwrap(), (vec![1, 2], true));
        assert!(decode_key(&[0x11]).unwrap_err().contains("not a nibble"));
        assert!(decode_key(&[0x01, 0xab]).unwrap_err().contains("padding"));
        assert!(decode_key(&[0x04, 0xab]).unwrap_err().contains("unknown bits"));
        let mut long = vec![0x00];
        long.extend([0x11; 33]);
        assert!(decode_key(&long).unwrap_err().contains("66 nibbles"));
    }

    #[test]
    fn masks_and_storage_values() {
        assert_eq!(check_mask(0b101).unwrap(), 5);
        assert!(check_mask(0).is_err());
        assert!(check_mask(0x1_0000).is_err());
        assert!(check_storage_value(&[1]).is_ok());
        assert!(check_storage_value(&[]).is_err());
        assert!(check_storage_value(&[0, 1]).is_err());
        assert!(check_storage_value(&[1; 33]).is_err());
    }

    #[test]
    fn reads_an_account_leaf_with_every_operand() {
        // key (odd, terminated: nibble 5), flags 0x0f, nonce 3, balance 0x0100, code length 2
        let bytes = [0x05, 0x42, 0x03, 0x50, 0x0f, 0x03, 0x42, 0x01, 0x00, 0x02];
        let mut c = Cursor::new(&bytes);
        let Instruction::Account(a) = read_instruction(&mut c).unwrap() else { panic!("not an account") };
        assert_eq!(
            a,
            AccountOperands {
                key: vec![5],
                nonce: 3,
                balance: U256::from(256),
                has_storage: true,
                code_len: Some(2)
            }
        );
        assert!(c.is_empty());
        let mut c = Cursor::new(&[0x05, 0x41, 0x05, 0x10]);
        assert_eq!(read_instruction(&mut c).unwrap_err(), (3, CompactErrorKind::AccountFlags(0x10)));
    }

    #[test]
    fn rejects_unknown_and_unsupported_opcodes() {
        for (op, name) in [(0x07u8, Some("SMT_LEAF")), (0xbb, Some("NEW_TRIE")), (0x09, None)] {
            let err = read_instruction(&mut Cursor::new(&[op])).unwrap_err();
            match (err.1, name) {
                (CompactErrorKind::Unsupported { name: got, .. }, Some(want)) => assert_eq!(got, want),
                (CompactErrorKind::UnknownOpcode(got), None) => assert_eq!(got, op),
                (other, _) => panic!("opcode {op:#x}: {other:?}"),
            }
        }
    }
}
