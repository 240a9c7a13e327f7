//! One service per store: a second `serve` on the same store would take over the
//! first's unfinished jobs (it restores them at start) and rewrite their records.
//!
//! The service holds the runtime's lease primitive under `serve-lock/lease` (a name
//! that is neither a job id, so `gc` never touches it, nor a `serve-{job}` prefix):
//!
//! 1. at start, before the jobs are restored, it takes the lease; a lease of a service
//!    that died (its holder stopped refreshing) is waited out, at most one lease
//!    lifetime (`--lease-secs`); a live one makes the start fail (exit 1, naming it);
//! 2. while it runs it refreshes the lease every third of its lifetime; if another
//!    holder took it (or its record was removed), the service stops at once, as on
//!    SIGTERM, and exits 1;
//! 3. on a clean stop it releases the lease, so the next start does not wait.
//!
//! Like the job lease it is best effort (the store has no compare-and-swap): two
//! services started in the same instant may both pass step 1; the loser stops at its
//! first refresh (step 2).

use std::sync::Arc;
use std::time::Duration;

use proofline_runtime::leader::{Lease, LeaseError, new_holder_id};
use proofline_runtime::store::ArtifactStore;

/// The lease's name in the store (`serve-lock/lease`).
pub const NAME: &str = "serve-lock";

/// Step 1.
pub async fn acquire(store: Arc<dyn ArtifactStore>, ttl: Duration) -> Result<Arc<Lease>, String> {
    let holder = new_holder_id();
    let give_up = tokio::time::Instant::now() + ttl + Duration::from_secs(1);
    loop {
        let (s, h) = (store.clone(), holder.clone());
        let taken = tokio::task::spawn_blocking(move || Lease::acquire(s, NAME, &h, ttl))
            .await
            .map_err(|e| format!("taking the service lease: {e}"))?;
        match taken {
            Ok(lease) => return Ok(Arc::new(lease)),
            Err(LeaseError::Held { expires_in, holder: other, .. })
                if tokio::time::Instant::now() + expires_in <= give_up =>
            {
                tracing::info!(service = %other, wait_s = expires_in.as_secs_f64(),
                    "another service held this store; waiting for its lease to lapse");
                tokio::time::sleep(expires_in + Duration::from_millis(50)).await;
            }
            Err(LeaseError::Held { expires_in, holder: other, .. }) => {
                return Err(format!(
                    "another proofline-leader serve ({other}) runs on this store (its lease is \
                     refreshed, {} s left): run one service per store",
                    expires_in.as_secs()
                ));
            }
            Err(e) => return Err(format!("taking the service lease: {e}")),
        }
    }
}

/// Step 2: refresh until the lease is lost; returns why.
pub async fn keep(lease: Arc<Lease>) -> String {
    loop {
        tokio::time::sleep(lease.ttl() / 3).await;
        let held = lease.clone();
        match tokio::task::spawn_blocking(move || held.refresh()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) if e.is_lost() => {
                return format!("{e} (another service took this store over; run one service per store)");
            }
            Ok(Err(e)) => tracing::warn!("refreshing the service lease: {e} (trying again)"),
            Err(e) => return format!("the service lease refresher stopped: {e}"),
        }
    }
}

/// Step 3.
pub async fn release(lease: Arc<Lease>) {
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || lease.release()).await {
        tracing::warn!("releasing the service lease: {e} (it lapses by itself)");
    }
}
