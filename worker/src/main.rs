//! `proofline-worker`: joins a cluster over AMQP and runs proof plugins.
//!
//! The AMQP transport is not built yet, so there is no cluster to join: the embedded
//! worker inside `proofline-leader stdio` is the only worker today.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "proofline-worker: cluster mode needs the AMQP transport, which this build does not have yet.\n\
         Prove locally with the embedded worker: proofline-leader stdio < block.json > block.proof"
    );
    ExitCode::from(1)
}
