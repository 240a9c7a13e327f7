//! `verify` mode: exit 0 only if a proof file verifies.

use std::io::Read;
use std::path::Path;

use proofline_runtime::plugin::{PluginError, Verdict};
use proofline_runtime::proof_file::{ProofFile, ProofFileError};

use crate::Failure;

pub fn verify(file: &Path) -> Result<(), Failure> {
    let bytes = if file == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(file)
    }
    .map_err(|e| Failure::bad_input(format!("cannot read {}: {e}", file.display())))?;
    let proof = ProofFile::decode(&bytes).map_err(|e| match e {
        ProofFileError::Malformed(_) => Failure::bad_input(format!("{}: {e}", file.display())),
        ProofFileError::Checksum { .. } => {
            Failure::other(format!("{}: does not verify: {e}", file.display()))
        }
    })?;
    let registry = proofline_plugins::builtin();
    let name = proof.plugin.split('@').next().unwrap_or_default();
    let plugin = crate::plugin_named(&registry, name)?;
    if plugin.id().to_string() != proof.plugin {
        return Err(Failure::bad_input(format!(
            "{}: made by {}, this build verifies {}",
            file.display(),
            proof.plugin,
            plugin.id()
        )));
    }
    match plugin.verify(&proof.body) {
        Ok(Verdict::Valid { statement }) => {
            println!("proof verifies: {statement}");
            Ok(())
        }
        Ok(Verdict::Invalid { reason }) => {
            Err(Failure::other(format!("{}: does not verify: {reason}", file.display())))
        }
        Err(PluginError::BadInput(m)) => {
            Err(Failure::bad_input(format!("{}: malformed proof: {m}", file.display())))
        }
        Err(e) => Err(Failure::other(format!("{}: verification failed: {e}", file.display()))),
    }
}
