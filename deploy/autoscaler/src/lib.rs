//! `proofline-autoscaler`: sizes Proofline worker pools from all outstanding work and
//! never removes a worker that holds work.
//!
//! - [`policy`]: how many workers per pool (pure, table-tested);
//! - [`victims`]: which workers may go (pure);
//! - [`signal`] and [`scrape`]: outstanding cost from leaders, load from workers;
//! - [`backend`]: `kube` (Deployments' scale subresource, pod deletion costs) and
//!   `local` (worker processes on this host);
//! - [`controller`]: the loop around them; [`metrics`]: its own `/metrics`, `/livez`;
//! - [`sim`]: a simulated day comparing policies (`proofline-autoscaler simulate`).
//!
//! Run one replica: two autoscalers would each size the same Deployments from the same
//! figures and fight over replicas for nothing (the kube Deployment uses `Recreate`).

pub mod backend;
pub mod cli;
pub mod controller;
pub mod metrics;
pub mod policy;
pub mod scrape;
pub mod signal;
pub mod sim;
pub mod victims;
