//! `serve` mode: a long-running proving service with an HTTP API. (Being written.)

use std::net::SocketAddr;

use clap::Args;

use crate::Failure;
use crate::cli::{Common, JobArgs};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address of the HTTP API.
    #[arg(long, env = "PROOFLINE_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub job: JobArgs,
}

pub async fn run(_common: &Common, _args: &ServeArgs) -> Result<(), Failure> {
    Err(Failure::other("serve is not built yet"))
}
