//! The job lease: `{job}/lease` in the artifact store says which leader runs a job and
//! until when, so that two leaders never drive one job and `gc` never deletes a job
//! that is still running.
//!
//! The record is JSON, `{"holder": "...", "expires_unix_ms": ..., "version": ...}`. The
//! holder is a leader incarnation id ([`new_holder_id`]: host name and 16 random hex
//! digits), so a restarted leader on the same host is another holder.
//!
//! Protocol (the decisions are the pure [`decide`]; [`Lease`] does the I/O):
//!
//! 1. [`Lease::acquire`] reads the record. Another holder's unexpired lease is
//!    [`LeaseError::Held`]; no record, an expired one, or our own is replaced by ours
//!    (version + 1, expiring `ttl` from now).
//! 2. It reads the record back and checks that it is ours: a second leader that wrote
//!    in between wins, and this one gets `Held`.
//! 3. The holder calls [`Lease::refresh`] well within the ttl (a third of it, say). It
//!    fails with `Held` or [`LeaseError::Lost`] once someone else has written the
//!    record: the holder must then stop driving the job.
//! 4. [`Lease::release`] marks the record expired (the job's artifacts, lease included,
//!    are deleted with its prefix).
//!
//! **Best effort, not a lock.** The [`ArtifactStore`] has no compare-and-swap, so two
//! leaders that both read "free" before either writes can both pass the read-back
//! (A writes, A reads back, then B writes). The loser finds out at its next refresh,
//! at the latest one refresh interval later. Expiry compares wall clocks of different
//! machines: keep the ttl far above their skew (tens of seconds or more).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::store::{ArtifactStore, StoreError, hostname, unique_hex};

/// The stored lease of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The leader incarnation that holds it ([`new_holder_id`]).
    pub holder: String,
    /// When it ends unless refreshed, in milliseconds since the Unix epoch.
    pub expires_unix_ms: u64,
    /// Incremented by every write.
    pub version: u32,
}

/// What a leader may do with a job's lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseDecision {
    /// No lease, or an expired one of another holder: write ours with this version.
    Take { version: u32 },
    /// Ours already: write it again (refresh) with this version.
    Renew { version: u32 },
    /// Another holder's lease runs for `expires_in` more.
    Held { holder: String, expires_in: Duration },
}

/// Decide from the stored record (if any) whether `me` may write the lease at `now_ms`.
pub fn decide(existing: Option<&LeaseRecord>, me: &str, now_ms: u64) -> LeaseDecision {
    match existing {
        None => LeaseDecision::Take { version: 1 },
        Some(r) if r.holder == me => LeaseDecision::Renew { version: r.version.wrapping_add(1) },
        Some(r) if r.expires_unix_ms > now_ms => LeaseDecision::Held {
            holder: r.holder.clone(),
            expires_in: Duration::from_millis(r.expires_unix_ms - now_ms),
        },
        Some(r) => LeaseDecision::Take { version: r.version.wrapping_add(1) },
    }
}

/// Whether a stored lease keeps its job alive at `now_ms`.
pub fn is_live(record: Option<&LeaseRecord>, now_ms: u64) -> bool {
    record.is_some_and(|r| r.expires_unix_ms > now_ms)
}

#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "job {job} is being run by leader {holder} (its lease expires in {} s): \
         wait for it to end, or stop that leader",
        expires_in.as_secs()
    )]
    Held { job: String, holder: String, expires_in: Duration },
    #[error("lost the lease of job {job}: {}", match holder {
        Some(h) => format!("leader {h} took it over"),
        None => "its lease record was removed".to_owned(),
    })]
    Lost { job: String, holder: Option<String> },
    #[error("the lease record {key} is unreadable (delete it if no leader runs the job): {source}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the lease of job {job}")]
    Store {
        job: String,
        #[source]
        source: StoreError,
    },
}

impl LeaseError {
    /// Another leader has the job now: stop driving it (rather than retry the store).
    pub fn is_lost(&self) -> bool {
        matches!(self, LeaseError::Held { .. } | LeaseError::Lost { .. })
    }
}

/// A fresh leader incarnation id: `{host name}-{16 hex}`.
pub fn new_holder_id() -> String {
    format!("{}-{}", hostname(), unique_hex())
}

fn now_ms(now: SystemTime) -> u64 {
    now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn key_of(job: &str) -> String {
    format!("{job}/lease")
}

fn read(store: &dyn ArtifactStore, job: &str) -> Result<Option<LeaseRecord>, LeaseError> {
    let key = key_of(job);
    let bytes = store.get_raw(&key).map_err(|source| LeaseError::Store { job: job.to_owned(), source })?;
    bytes
        .map(|b| {
            serde_json::from_slice(&b).map_err(|source| LeaseError::Corrupt { key: key.clone(), source })
        })
        .transpose()
}

fn write(store: &dyn ArtifactStore, job: &str, record: &LeaseRecord) -> Result<(), LeaseError> {
    let bytes = serde_json::to_vec(record).expect("a lease record serializes");
    store.put(&key_of(job), &bytes).map_err(|source| LeaseError::Store { job: job.to_owned(), source })?;
    Ok(())
}

/// Whether a leader holds `job`'s lease at `now` (for `gc`: such a job is running).
pub fn lease_is_live(store: &dyn ArtifactStore, job: &str, now: SystemTime) -> Result<bool, LeaseError> {
    Ok(is_live(read(store, job)?.as_ref(), now_ms(now)))
}

/// A job's lease, held by this leader.
pub struct Lease {
    store: Arc<dyn ArtifactStore>,
    job: String,
    holder: String,
    ttl: Duration,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("job", &self.job).field("holder", &self.holder).finish()
    }
}

impl Lease {
    /// Take `job`'s lease for `holder` for `ttl`, unless another holder's is unexpired.
    pub fn acquire(
        store: Arc<dyn ArtifactStore>,
        job: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, LeaseError> {
        let existing = read(&*store, job)?;
        let version = match decide(existing.as_ref(), holder, now_ms(SystemTime::now())) {
            LeaseDecision::Take { version } | LeaseDecision::Renew { version } => version,
            LeaseDecision::Held { holder, expires_in } => {
                return Err(LeaseError::Held { job: job.to_owned(), holder, expires_in });
            }
        };
        let lease = Lease { store, job: job.to_owned(), holder: holder.to_owned(), ttl };
        lease.write_and_check(version)?;
        Ok(lease)
    }

    /// Extend the lease by its ttl from now. Fails once another leader wrote it.
    pub fn refresh(&self) -> Result<(), LeaseError> {
        let existing = read(&*self.store, &self.job)?;
        let lost = |holder: Option<String>| LeaseError::Lost { job: self.job.clone(), holder };
        let next = match (decide(existing.as_ref(), &self.holder, now_ms(SystemTime::now())), existing) {
            (LeaseDecision::Renew { version }, _) => version,
            (LeaseDecision::Held { holder, expires_in }, _) => {
                return Err(LeaseError::Held { job: self.job.clone(), holder, expires_in });
            }
            // Gone, or written (then left to expire) by someone else: not ours any more.
            (LeaseDecision::Take { .. }, existing) => return Err(lost(existing.map(|r| r.holder))),
        };
        self.write_and_check(next)
    }

    /// Give the lease up (mark it expired), if it is still ours. A failure is harmless
    /// (the lease then expires by itself) but worth a warning.
    pub fn release(&self) -> Result<(), LeaseError> {
        match read(&*self.store, &self.job)? {
            Some(record) if record.holder == self.holder => {
                let expired =
                    LeaseRecord { expires_unix_ms: 0, version: record.version.wrapping_add(1), ..record };
                write(&*self.store, &self.job, &expired)
            }
            _ => Ok(()),
        }
    }

    /// The job.
    pub fn job(&self) -> &str {
        &self.job
    }

    /// This holder's id.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// How long a write keeps the lease.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Write our record with `version`, then read it back: a concurrent writer wins.
    fn write_and_check(&self, version: u32) -> Result<(), LeaseError> {
        let expires_unix_ms = now_ms(SystemTime::now()).saturating_add(self.ttl.as_millis() as u64);
        let record = LeaseRecord { holder: self.holder.clone(), expires_unix_ms, version };
        write(&*self.store, &self.job, &record)?;
        match read(&*self.store, &self.job)? {
            Some(back) if back == record => Ok(()),
            Some(back) => Err(LeaseError::Held {
                job: self.job.clone(),
                expires_in: Duration::from_millis(
                    back.expires_unix_ms.saturating_sub(now_ms(SystemTime::now())),
                ),
                holder: back.holder,
            }),
            None => Err(LeaseError::Lost { job: self.job.clone(), holder: None }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    fn record(holder: &str, expires_unix_ms: u64, version: u32) -> LeaseRecord {
        LeaseRecord { holder: holder.into(), expires_unix_ms, version }
    }

    #[test]
    fn decide_takes_free_or_expired_leases_renews_ours_and_respects_others() {
        assert_eq!(decide(None, "a", 1000), LeaseDecision::Take { version: 1 });
        assert_eq!(decide(Some(&record("b", 999, 4)), "a", 1000), LeaseDecision::Take { version: 5 });
        assert_eq!(decide(Some(&record("b", 1000, 4)), "a", 1000), LeaseDecision::Take { version: 5 });
        assert_eq!(decide(Some(&record("a", 5000, 4)), "a", 1000), LeaseDecision::Renew { version: 5 });
        assert_eq!(decide(Some(&record("a", 10, 4)), "a", 1000), LeaseDecision::Renew { version: 5 });
        assert_eq!(
            decide(Some(&record("b", 3500, 4)), "a", 1000),
            LeaseDecision::Held { holder: "b".into(), expires_in: Duration::from_millis(2500) }
        );
        assert_eq!(decide(Some(&record("b", 1, u32::MAX)), "a", 2), LeaseDecision::Take { version: 0 });
    }

    #[test]
    fn liveness_is_an_unexpired_record() {
        assert!(!is_live(None, 10));
        assert!(!is_live(Some(&record("a", 10, 1)), 10));
        assert!(is_live(Some(&record("a", 11, 1)), 10));
    }

    #[test]
    fn holder_ids_name_the_host_and_differ() {
        let (a, b) = (new_holder_id(), new_holder_id());
        assert_ne!(a, b);
        assert!(a.starts_with(&format!("{}-", hostname())), "{a}");
    }

    #[test]
    fn a_second_leader_is_refused_and_the_first_loses_a_taken_over_lease() {
        let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
        let hour = Duration::from_secs(3600);
        let a = Lease::acquire(store.clone(), "job-1", "leader-a", hour).unwrap();
        assert!(lease_is_live(&*store, "job-1", SystemTime::now()).unwrap());
        assert!(!lease_is_live(&*store, "job-2", SystemTime::now()).unwrap());
        match Lease::acquire(store.clone(), "job-1", "leader-b", hour) {
            Err(LeaseError::Held { holder, expires_in, .. }) => {
                assert_eq!(holder, "leader-a");
                assert!(expires_in > Duration::from_secs(3500), "{expires_in:?}");
            }
            other => panic!("{other:?}"),
        }
        a.refresh().unwrap();
        // Another leader overwrites the record (the race a store without CAS allows).
        let b = record("leader-b", now_ms(SystemTime::now()) + 3_600_000, 9);
        write(&*store, "job-1", &b).unwrap();
        assert!(matches!(a.refresh(), Err(LeaseError::Held { holder, .. }) if holder == "leader-b"));
        // Expired and then the record removed: lost, never silently re-taken by refresh.
        write(&*store, "job-1", &record("leader-b", 1, 10)).unwrap();
        let lost = a.refresh().unwrap_err();
        assert!(
            lost.is_lost() && matches!(&lost, LeaseError::Lost { holder: Some(h), .. } if h == "leader-b")
        );
        // Released by a leader that no longer holds it: the other's record stays.
        a.release().unwrap();
        assert_eq!(read(&*store, "job-1").unwrap().unwrap().holder, "leader-b");
    }

    #[test]
    fn release_frees_the_job_and_an_expired_lease_can_be_taken() {
        let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
        let a = Lease::acquire(store.clone(), "job-1", "leader-a", Duration::from_secs(60)).unwrap();
        a.release().unwrap();
        assert!(!lease_is_live(&*store, "job-1", SystemTime::now()).unwrap());
        let b = Lease::acquire(store.clone(), "job-1", "leader-b", Duration::from_millis(1)).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let c = Lease::acquire(store.clone(), "job-1", "leader-c", Duration::from_secs(60)).unwrap();
        assert!(matches!(b.refresh(), Err(LeaseError::Held { .. })));
        c.refresh().unwrap();
        assert_eq!(read(&*store, "job-1").unwrap().unwrap().version, 5);
    }

    #[test]
    fn an_unreadable_lease_is_an_error_naming_its_key() {
        let store: Arc<dyn ArtifactStore> = Arc::new(MemStore::default());
        store.put("job-1/lease", b"{not json").unwrap();
        let err = lease_is_live(&*store, "job-1", SystemTime::now()).unwrap_err();
        assert!(matches!(err, LeaseError::Corrupt { .. }));
        assert!(err.to_string().contains("job-1/lease"), "{err}");
    }
}
