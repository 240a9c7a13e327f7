//! `gc` mode: delete what failed or abandoned jobs left in the store.

use std::time::{Duration, SystemTime};

use crate::Failure;
use crate::cli::Common;

pub fn gc(common: &Common, older_than: Duration, dry_run: bool) -> Result<(), Failure> {
    let store = common.s3.open(&common.store).map_err(|e| Failure::other(format!("artifact store: {e}")))?;
    let jobs = store.list_jobs().map_err(|e| Failure::other(format!("listing {}: {e}", store.describe())))?;
    let now = SystemTime::now();
    let (mut deleted, mut bytes) = (0, 0);
    for job in jobs {
        let age = now.duration_since(job.newest).unwrap_or_default();
        if age < older_than {
            continue;
        }
        let verb = if dry_run { "would delete" } else { "deleting" };
        println!(
            "{verb} {} ({} artifacts, {} bytes, newest {} s old)",
            job.job,
            job.objects,
            job.bytes,
            age.as_secs()
        );
        if !dry_run {
            store
                .delete_prefix(&job.job)
                .map_err(|e| Failure::other(format!("deleting {}: {e}", job.job)))?;
        }
        deleted += 1;
        bytes += job.bytes;
    }
    println!(
        "{} {deleted} job(s), {bytes} bytes, in {}",
        if dry_run { "would free" } else { "freed" },
        store.describe()
    );
    Ok(())
}
