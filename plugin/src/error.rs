//! How a plugin call fails, and what verifying a final proof concludes.

/// Why a plugin call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The job's input (or a proof handed to `verify`) is malformed: the message says
    /// what and where. Never retried; the CLI exits with code 2.
    #[error("{0}")]
    BadInput(String),
    /// The task failed. `retryable` failures are re-dispatched until attempts run out.
    #[error("{message}")]
    Failed { message: String, retryable: bool },
    /// The task noticed [`ExecCx::is_cancelled`](crate::ExecCx::is_cancelled).
    #[error("cancelled")]
    Cancelled,
}

impl PluginError {
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::BadInput(message.into())
    }
    pub fn retryable(message: impl Into<String>) -> Self {
        Self::Failed { message: message.into(), retryable: true }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::Failed { message: message.into(), retryable: false }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Failed { retryable: true, .. })
    }
}

/// The outcome of verifying a final proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The proof verifies; `statement` says, for humans, what it establishes.
    Valid { statement: String },
    /// The proof is well-formed but does not verify.
    Invalid { reason: String },
}
