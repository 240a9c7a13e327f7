//! Repairing artifacts that a resumed job finds corrupted or missing in a real S3
//! bucket, with two lanes and heartbeats flowing while the repair runs.
//!
//! The first run is cancelled once segments 0..3 are folded (segment 3 hangs), so the
//! journal holds `agg-0-2` and its children; then `agg-0-2` is damaged in the bucket
//! and the job is resumed. Its producer is known only from the journal (it finished
//! before the resume), and the consumer `agg-0-3` may go again only after the repair
//! succeeded, not at the repair's first heartbeat. Last, a leaf (`seg-0`, long folded)
//! is lost: only wrap reads it again, and wrap waits for its repair.

use std::sync::Arc;
use std::time::Duration;

use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::plugin::{PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::{ArtifactStore, S3Store};
use proofline_runtime::worker::WorkerConfig;
use proofline_sim::SimPlugin;
use proofline_tests::s3::S3Server;

#[derive(Clone, Copy, Debug)]
enum Damage {
    Corrupt,
    Delete,
    LoseLeaf,
}

#[test]
fn a_resumed_job_repairs_pre_crash_artifacts_that_are_corrupt_or_missing() {
    let server = S3Server::moto();
    server.create_bucket("proofs");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for damage in [Damage::Corrupt, Damage::Delete, Damage::LoseLeaf] {
        runtime.block_on(resume_after(&server, damage));
    }
}

async fn resume_after(server: &S3Server, damage: Damage) {
    let s3 = Arc::new(S3Store::connect(server.config("proofs", &format!("{damage:?}"))).unwrap());
    let sim = SimPlugin::new();
    let plugin: Arc<dyn ProofSystem> = Arc::new(sim.clone());
    let mut plugins = PluginRegistry::new();
    plugins.register(plugin.clone());
    let mut worker = WorkerConfig::new("repair-test", 2);
    // Heartbeats many times per task: a repair's heartbeat must not release its consumer.
    worker.heartbeat = Duration::from_millis(50);
    let store: Arc<dyn ArtifactStore> = s3.clone();
    let cluster = Embedded::start(plugins.clone(), store, worker, LeaderConfig::default()).await.unwrap();
    // 256-byte artifacts: larger than what travels inline, so they live in the bucket.
    let workload = br#"{"tasks": 4, "cost": {"fixed": {"micros": 300000}}, "work": "sleep",
        "fail": {"segments": [3], "mode": "hang", "times": 1}, "wrap_reads_leaves": true,
        "artifact_bytes": 256}"#;
    let plan = plugin.plan(workload, &PlanOptions::default()).unwrap();

    let first = cluster.leader.submit(plugin.clone(), plan).await.unwrap();
    let job = first.job.clone();
    let mut progress = first.progress.clone();
    tokio::time::timeout(
        Duration::from_secs(60),
        progress.wait_for(|p| p.segments_done == 3 && p.aggregations_done == 2),
    )
    .await
    .expect("segments 0..3 fold while segment 3 hangs")
    .unwrap();
    first.cancel("test: leader stops");
    assert!(first.wait().await.unwrap_err().is_cancelled());

    let damaged = if let Damage::LoseLeaf = damage { "seg-0" } else { "agg-0-2" };
    let object = s3.object_key(&format!("{job}/{damaged}"));
    let client = s3.client().clone();
    match damage {
        Damage::Corrupt => {
            let body = b"flipped bits, not a proof".to_vec();
            client.put_object().bucket(s3.bucket()).key(&object).body(body.into()).send().await.unwrap();
        }
        Damage::Delete | Damage::LoseLeaf => {
            client.delete_object().bucket(s3.bucket()).key(&object).send().await.unwrap();
        }
    }

    let resumed = cluster.leader.resume(&job, &plugins).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), resumed.wait()).await.unwrap().unwrap();
    assert_eq!(out.stats.resumed_segments, 3, "{damage:?}: {:?}", out.stats);
    assert_eq!(out.stats.repairs, 1, "{damage:?}: {:?}", out.stats);
    match plugin.verify(&out.proof).unwrap() {
        Verdict::Valid { .. } => {}
        Verdict::Invalid { reason } => panic!("{damage:?}: {reason}"),
    }
    // Three segments before the crash, segment 3 after it, and the lost leaf once more.
    let proven = if let Damage::LoseLeaf = damage { 5 } else { 4 };
    assert_eq!(
        sim.counters().segments_completed.load(std::sync::atomic::Ordering::Relaxed),
        proven,
        "{damage:?}"
    );
    cluster.leader.discard(&job).await.unwrap();
}
