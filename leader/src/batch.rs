//! `batch` mode: many blocks at once, one proof file each. (Being written.)

use std::path::PathBuf;

use clap::Args;

use crate::Failure;
use crate::cli::{Common, JobArgs};

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// Block files, directories of them, or `-` (paths on stdin).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Directory for the proofs (`<number>-<hash prefix>.proof`) and their summaries.
    #[arg(long, short, env = "PROOFLINE_OUT")]
    pub out: PathBuf,
    #[command(flatten)]
    pub job: JobArgs,
}

pub async fn run(_common: &Common, _args: &BatchArgs) -> Result<(), Failure> {
    Err(Failure::other("batch is not built yet"))
}
