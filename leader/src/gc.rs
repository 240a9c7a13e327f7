//! `gc` mode: delete what failed or abandoned jobs left in the store.
//!
//! What is a Proofline job: a top-level prefix of the store whose name is a job id
//! ([`is_job_id`]: `job-<hex seconds>-<8 hex>`, what the leader makes). Anything else
//! (`docs/`, another program's objects in a shared bucket without a prefix) is never
//! touched, whatever its age; `--dry-run` lists it as skipped. The name alone decides,
//! not a manifest: a job that crashed before writing its manifest is still garbage.
//!
//! For each Proofline job whose newest artifact is older than `--older-than`:
//!
//! 1. its lease (`{job}/lease`) is read just before deleting: a live lease means a
//!    leader is running (or resuming) the job, which is kept and reported; an
//!    unreadable lease keeps the job too (and makes gc exit 1);
//! 2. otherwise its whole prefix is deleted (`--dry-run`: listed as `would delete`,
//!    exactly the jobs a real run at the same moment deletes).
//!
//! Output lines on stdout: `would delete JOB (...)` / `deleting JOB (...)`,
//! `skipped NAME: reason`, and a summary line.

use std::time::{Duration, SystemTime};

use proofline_runtime::leader::lease_is_live;
use proofline_runtime::store::JobArtifacts;
use proofline_runtime::task::is_job_id;

use crate::Failure;
use crate::cli::Common;

/// What gc makes of one top-level prefix, before looking at its lease.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Not named like a job id: never touched.
    NotAJob,
    /// A job with an artifact newer than `--older-than`.
    Young,
    /// A job old enough to delete, unless its lease is live.
    Old { age: Duration },
}

fn judge(job: &JobArtifacts, now: SystemTime, older_than: Duration) -> Verdict {
    if !is_job_id(&job.job) {
        return Verdict::NotAJob;
    }
    let age = now.duration_since(job.newest).unwrap_or_default();
    if age < older_than { Verdict::Young } else { Verdict::Old { age } }
}

/// Counts for the summary line.
#[derive(Default)]
struct Tally {
    deleted: u64,
    bytes: u64,
    foreign: u64,
    running: u64,
    failed: Vec<String>,
}

pub fn gc(common: &Common, older_than: Duration, dry_run: bool) -> Result<(), Failure> {
    let store = common.s3.open(&common.store).map_err(|e| Failure::other(format!("artifact store: {e}")))?;
    let jobs = store.list_jobs().map_err(|e| Failure::other(format!("listing {}: {e}", store.describe())))?;
    let now = SystemTime::now();
    let mut tally = Tally::default();
    for job in jobs {
        let age = match judge(&job, now, older_than) {
            Verdict::NotAJob => {
                tally.foreign += 1;
                if dry_run {
                    println!(
                        "skipped {}: not a Proofline job (its name is not a job id), never touched",
                        job.job
                    );
                }
                continue;
            }
            Verdict::Young => continue,
            Verdict::Old { age } => age,
        };
        match lease_is_live(&*store, &job.job, SystemTime::now()) {
            Ok(false) => {}
            Ok(true) => {
                tally.running += 1;
                println!("skipped {}: running (a leader holds its lease), kept", job.job);
                continue;
            }
            Err(e) => {
                println!("skipped {}: {e}", job.job);
                tally.failed.push(format!("{}: {e}", job.job));
                continue;
            }
        }
        let verb = if dry_run { "would delete" } else { "deleting" };
        println!(
            "{verb} {} ({} artifacts, {} bytes, newest {} s old)",
            job.job,
            job.objects,
            job.bytes,
            age.as_secs()
        );
        if !dry_run && let Err(e) = store.delete_prefix(&job.job) {
            tally.failed.push(format!("deleting {}: {e}", job.job));
            continue;
        }
        tally.deleted += 1;
        tally.bytes += job.bytes;
    }
    println!("{}", summary(&tally, dry_run, &store.describe()));
    match tally.failed.as_slice() {
        [] => Ok(()),
        [first, rest @ ..] => Err(Failure::other(format!(
            "{} job(s) were left in place: {first}{}",
            rest.len() + 1,
            if rest.is_empty() { String::new() } else { format!(" (and {} more above)", rest.len()) }
        ))),
    }
}

fn summary(tally: &Tally, dry_run: bool, store: &str) -> String {
    let mut line = format!(
        "{} {} job(s), {} bytes, in {store}",
        if dry_run { "would free" } else { "freed" },
        tally.deleted,
        tally.bytes
    );
    if tally.running > 0 {
        line += &format!("; kept {} running job(s)", tally.running);
    }
    if tally.foreign > 0 {
        line += &format!(
            "; left {} prefix(es) that are not Proofline jobs alone{}",
            tally.foreign,
            if dry_run { "" } else { " (--dry-run lists them)" }
        );
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str, age_secs: u64, now: SystemTime) -> JobArtifacts {
        JobArtifacts { job: name.into(), newest: now - Duration::from_secs(age_secs), objects: 1, bytes: 1 }
    }

    #[test]
    fn only_old_prefixes_named_like_job_ids_are_candidates() {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        assert_eq!(judge(&job("docs", 10 * 86_400, now), now, day), Verdict::NotAJob);
        assert_eq!(judge(&job("job-1-abcdef1", 10 * 86_400, now), now, day), Verdict::NotAJob);
        assert_eq!(judge(&job("job-6752c1f0-1a2b3c4d", 60, now), now, day), Verdict::Young);
        assert_eq!(
            judge(&job("job-6752c1f0-1a2b3c4d", 2 * 86_400, now), now, day),
            Verdict::Old { age: 2 * day }
        );
        // An artifact newer than now (clock skew) counts as age 0, never as very old.
        let future = JobArtifacts { newest: now + day, ..job("job-1-abcdef12", 0, now) };
        assert_eq!(judge(&future, now, Duration::ZERO), Verdict::Old { age: Duration::ZERO });
    }

    #[test]
    fn the_summary_says_what_was_kept() {
        let tally = Tally { deleted: 2, bytes: 10, foreign: 1, running: 1, failed: vec![] };
        assert_eq!(
            summary(&tally, false, "fs:x"),
            "freed 2 job(s), 10 bytes, in fs:x; kept 1 running job(s); \
             left 1 prefix(es) that are not Proofline jobs alone (--dry-run lists them)"
        );
        assert!(summary(&Tally::default(), true, "fs:x").starts_with("would free 0 job(s)"));
    }
}
