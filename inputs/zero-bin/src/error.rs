//! Error types: [`CompactError`] for the compact witness stream (always with the byte
//! offset and the instruction it concerns) and [`ZeroBinError`] for the JSON input (always
//! with the JSON path, e.g. `[0].other_data.b_data.b_hashes.prev_hashes[3]`).

use std::fmt;

use alloy_primitives::B256;

/// Where in a compact stream an error was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The version byte at offset 0.
    Header,
    /// The instruction with this index (0 = the first instruction after the header).
    Instruction(usize),
    /// After the last instruction (checks of the final stack); the count of instructions.
    End(usize),
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            At::Header => write!(f, "header"),
            At::Instruction(n) => write!(f, "instruction {n}"),
            At::End(n) => write!(f, "end of stream, after {n} instructions"),
        }
    }
}

/// An invalid or unsupported compact (Erigon "type 1") witness stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("compact stream byte {offset} ({at}): {kind}")]
pub struct CompactError {
    /// Byte offset into the decoded stream (not into its hex text).
    pub offset: usize,
    /// The instruction being read or executed.
    pub at: At,
    /// What is wrong.
    pub kind: CompactErrorKind,
}

/// What is wrong with a compact stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactErrorKind {
    #[error("the stream is empty (expected a version byte)")]
    Empty,
    #[error("unsupported witness version {0} (expected 1; 0 is also accepted, as zk_evm does)")]
    Version(u8),
    #[error("no instructions after the version byte")]
    NoInstructions,
    #[error("unknown opcode {0:#04x}")]
    UnknownOpcode(u8),
    #[error("{name} (opcode {opcode:#04x}) is not supported: {why}")]
    Unsupported { opcode: u8, name: &'static str, why: &'static str },
    #[error("truncated {what}: needs {needed} more bytes, {available} left")]
    Truncated { what: &'static str, needed: u64, available: usize },
    #[error("{what}: {message}")]
    Cbor { what: &'static str, message: String },
    #[error("invalid {what} key: {message}")]
    Key { what: &'static str, message: String },
    #[error(
        "account leaf flags {0:#04x} have unknown bits (known: 0x01 code, 0x02 storage, 0x04 nonce, 0x08 balance)"
    )]
    AccountFlags(u8),
    #[error("account balance is {0} bytes, more than the 32 of a U256")]
    BalanceTooLong(usize),
    #[error("storage leaf value {value}: {message}")]
    StorageValue { value: String, message: &'static str },
    #[error("branch mask {0:#x}: {1}")]
    BranchMask(u64, &'static str),
    #[error("{instruction} needs {needed} stack items but the stack holds {have}")]
    StackUnderflow { instruction: &'static str, needed: usize, have: usize },
    #[error("{instruction} expects {expected} on the stack, found {found}")]
    WrongItem { instruction: &'static str, expected: &'static str, found: &'static str },
    #[error("account code length operand {declared} != the {actual} bytes of its CODE")]
    CodeLength { declared: u64, actual: usize },
    #[error("{0}")]
    Structure(String),
    #[error("the stack must end with exactly one trie node, it holds {0} items")]
    FinalStack(usize),
    #[error("the stack ends with {0}, not a trie root (leaf, extension, branch or EMPTY_ROOT)")]
    FinalItem(&'static str),
}

/// An invalid zero_bin leader input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZeroBinError {
    #[error("expected a JSON array of zero_bin blocks or one block object, found {found}")]
    NotZeroBin { found: &'static str },
    #[error("the input array holds no blocks")]
    NoBlocks,
    #[error("{path}: missing")]
    Missing { path: String },
    #[error("{path}: expected {expected}, found {found}")]
    WrongType { path: String, expected: &'static str, found: &'static str },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {len} hex characters exceed the limit of {limit}")]
    TooLarge { path: String, len: usize, limit: usize },
    #[error("{path}: {source}")]
    Compact {
        path: String,
        #[source]
        source: CompactError,
    },
    #[error(
        "block {number}: the compact pre-state's trie root {computed} != other_data.checkpoint_state_trie_root {expected} (zero_bin rejects this as \"Inconsistent pre-state for first block\")"
    )]
    RootMismatch { number: u64, computed: B256, expected: B256 },
}
