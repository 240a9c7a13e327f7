//! What `gc` and the job lease rely on, against a real S3 server (s3s-fs, which checks
//! signatures and keeps objects on disk): two leaders contending for one job's lease,
//! and prefix deletion in a bucket used without a prefix, next to other data.
//! (`proofline-leader gc` itself runs against S3 in `leader/tests/gc.rs`.)

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proofline_runtime::leader::{Lease, LeaseError, lease_is_live};
use proofline_runtime::store::{ArtifactStore, S3Store};
use proofline_tests::s3::S3Server;

const JOB: &str = "job-6752c1f0-0000000a";

#[test]
fn a_second_leader_is_refused_and_a_taken_over_lease_is_lost_on_s3() {
    let server = S3Server::s3s_fs();
    server.create_bucket("leases");
    // Two processes' views of the same bucket and prefix.
    let connect =
        || -> Arc<dyn ArtifactStore> { Arc::new(S3Store::connect(server.config("leases", "c")).unwrap()) };
    let (a_store, b_store) = (connect(), connect());
    let ttl = Duration::from_secs(60);

    let a = Lease::acquire(a_store.clone(), JOB, "leader-a", ttl).unwrap();
    assert!(lease_is_live(&*b_store, JOB, SystemTime::now()).unwrap());
    match Lease::acquire(b_store.clone(), JOB, "leader-b", ttl) {
        Err(LeaseError::Held { holder, expires_in, .. }) => {
            assert_eq!(holder, "leader-a");
            assert!(expires_in > Duration::from_secs(50), "{expires_in:?}");
        }
        other => panic!("the second leader must be refused: {other:?}"),
    }
    a.refresh().unwrap();
    a.release().unwrap();
    assert!(!lease_is_live(&*b_store, JOB, SystemTime::now()).unwrap());

    let b = Lease::acquire(b_store.clone(), JOB, "leader-b", ttl).unwrap();
    let lost = a.refresh().unwrap_err();
    assert!(lost.is_lost(), "{lost}");
    assert!(lost.to_string().contains("leader-b"), "{lost}");
    b.refresh().unwrap();
}

fn keys(server: &S3Server, bucket: &'static str) -> BTreeSet<String> {
    server.with_client(|c| async move {
        let listed = c.list_objects_v2().bucket(bucket).send().await.unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    })
}

#[test]
fn deleting_a_job_in_a_bucket_without_prefix_leaves_lookalike_keys_alone() {
    let server = S3Server::s3s_fs();
    server.create_bucket("shared");
    let store = S3Store::connect(server.config("shared", "")).unwrap();
    let lookalikes = [format!("{JOB}0/seg-0"), format!("{JOB}.txt"), "docs/readme.md".into()];
    for key in &lookalikes {
        store.put(key, b"not this job's").unwrap();
    }
    store.put(&format!("{JOB}/seg-0"), b"proof").unwrap();
    store.put(&format!("{JOB}/journal/0000000000"), b"entry").unwrap();

    let listed: Vec<String> = store.list_jobs().unwrap().into_iter().map(|j| j.job).collect();
    assert_eq!(listed, ["docs".to_owned(), JOB.to_owned(), format!("{JOB}0")], "root objects are no job");

    store.delete_prefix(JOB).unwrap();
    assert_eq!(keys(&server, "shared"), lookalikes.into_iter().collect());
}
