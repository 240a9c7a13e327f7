//! Errors from reading and checking a block witness.
//!
//! Every message says what is wrong and where, naming the place as a JSON path into the
//! input (`witness.state[17]`, `blocks[0].header.number`). Users see these messages
//! directly, so they are written for people, not for programs.

use alloy_primitives::B256;

/// Why a block witness could not be read or does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessError {
    /// The input is empty (or only whitespace).
    #[error("empty input: expected a JSON block witness")]
    EmptyInput,

    /// The input is not valid JSON.
    #[error("malformed JSON at line {line} column {column}: {message}")]
    MalformedJson { line: usize, column: usize, message: String },

    /// The JSON is valid but is none of the known witness formats.
    #[error("unrecognized witness format: {0}")]
    UnknownFormat(String),

    /// A required field is absent.
    #[error("missing field {path}")]
    MissingField { path: String },

    /// A value has the wrong JSON type.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType { path: String, expected: &'static str, got: &'static str },

    /// A string that should hold hex does not.
    #[error("{path}: not hex ({reason})")]
    NotHex { path: String, reason: String },

    /// A fixed-size value (hash, address, ...) has the wrong number of bytes.
    #[error("{path}: expected {expected} bytes, got {got}")]
    WrongLength { path: String, expected: usize, got: usize },

    /// A value is present and well-typed but not acceptable (a bad quantity, a header
    /// whose RLP does not decode, more than one block, ...).
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },

    /// The witness has nothing to prove.
    #[error("empty witness: {path} has no {what}")]
    EmptyWitness { path: String, what: &'static str },

    /// `keccak256(header_rlp)` is not the block hash the input claims.
    #[error(
        "block header does not hash to the claimed block hash: keccak(header) = {computed}, claimed {claimed}"
    )]
    BlockHashMismatch { computed: B256, claimed: B256 },

    /// A header given in JSON together with its hash does not hash to it.
    #[error(
        "{path}: header does not hash to its claimed hash: keccak(header) = {computed}, claimed {claimed}"
    )]
    HeaderHashMismatch { path: String, computed: B256, claimed: B256 },

    /// Two places in the input that must agree do not.
    #[error("{path} is {found}, but {other_path} is {expected}")]
    Inconsistent { path: String, found: String, other_path: String, expected: String },

    /// The input is over one of the documented [limits](super::limits).
    #[error("too many {what}: {count}, at most {max} are accepted")]
    TooLarge { what: &'static str, count: String, max: usize },

    /// A zero_bin witness without the block header it lacks.
    #[error(
        "this is a Polygon Zero zero_bin witness, which holds no full block header (only its hash): \
         give the header with --header FILE (the block's eth_getBlockByNumber result, as zero_bin's \
         own `rpc fetch` has at hand)"
    )]
    NeedsHeader,

    /// The zero_bin part of an input is malformed or does not hold together.
    #[error("{path}: {source}")]
    ZeroBin {
        path: String,
        #[source]
        source: Box<proofline_zero_bin::ZeroBinError>,
    },

    /// No node of the state witness hashes to the parent's state root.
    #[error(
        "parent state root {root} (from {path}) is not the keccak of any of the {nodes} nodes in witness.state"
    )]
    StateRootNotInWitness { root: B256, path: String, nodes: usize },
}

impl WitnessError {
    pub(crate) fn missing(path: impl Into<String>) -> Self {
        Self::MissingField { path: path.into() }
    }

    pub(crate) fn invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid { path: path.into(), reason: reason.into() }
    }

    /// Turn a serde_json syntax error into a message with its line and column.
    pub(crate) fn from_json(err: &serde_json::Error) -> Self {
        let (line, column) = (err.line(), err.column());
        let full = err.to_string();
        let suffix = format!(" at line {line} column {column}");
        let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
        Self::MalformedJson { line, column, message }
    }
}
