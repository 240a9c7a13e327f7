//! Whole jobs on a real S3-compatible server: an outage in the middle, and an artifact
//! corrupted in the bucket.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use proofline_keccak::KeccakPlugin;
use proofline_runtime::embedded::Embedded;
use proofline_runtime::leader::LeaderConfig;
use proofline_runtime::plugin::{Plan, PlanOptions, PluginRegistry, ProofSystem, Verdict};
use proofline_runtime::store::{ArtifactStore, S3Store};
use proofline_runtime::worker::WorkerConfig;
use proofline_tests::s3::S3Server;

fn example_plan(segment_size: u64) -> (Arc<dyn ProofSystem>, Plan) {
    let block =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/example-block.json")).unwrap();
    let plugin: Arc<dyn ProofSystem> = Arc::new(KeccakPlugin);
    let plan = plugin.plan(&block, &PlanOptions { segment_size: Some(segment_size) }).unwrap();
    (plugin, plan)
}

async fn embedded(store: Arc<dyn ArtifactStore>, plugin: &Arc<dyn ProofSystem>, lanes: usize) -> Embedded {
    let mut plugins = PluginRegistry::new();
    plugins.register(plugin.clone());
    Embedded::start(plugins, store, WorkerConfig::new("s3-test", lanes), LeaderConfig::default())
        .await
        .unwrap()
}

fn assert_verifies(plugin: &Arc<dyn ProofSystem>, proof: &[u8]) {
    match plugin.verify(proof).unwrap() {
        Verdict::Valid { .. } => {}
        Verdict::Invalid { reason } => panic!("proof does not verify: {reason}"),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

// The harness's bucket helpers block: set up outside the async runtime.
#[test]
fn a_ten_second_s3_outage_mid_job_is_survived() {
    let mut server = S3Server::s3s_fs();
    server.create_bucket("proofs");
    runtime().block_on(outage(&mut server));
}

async fn outage(server: &mut S3Server) {
    let store: Arc<dyn ArtifactStore> =
        Arc::new(S3Store::connect(server.config("proofs", "outage")).unwrap());
    let (plugin, plan) = example_plan(400);
    let cluster = embedded(store, &plugin, 2).await;
    let job = cluster.leader.submit(plugin.clone(), plan).await.unwrap();
    let mut progress = job.progress.clone();
    tokio::time::timeout(Duration::from_secs(120), progress.wait_for(|p| p.segments_done >= 1))
        .await
        .unwrap()
        .unwrap();
    server.stop();
    tokio::time::sleep(Duration::from_secs(10)).await;
    server.start();
    let out = tokio::time::timeout(Duration::from_secs(300), job.wait()).await.unwrap().unwrap();
    assert_verifies(&plugin, &out.proof);
}

#[test]
fn an_artifact_corrupted_in_the_bucket_is_detected_and_recomputed() {
    let server = S3Server::moto();
    server.create_bucket("proofs");
    runtime().block_on(corruption(&server));
}

async fn corruption(server: &S3Server) {
    let s3 = Arc::new(S3Store::connect(server.config("proofs", "corrupt")).unwrap());
    let (plugin, plan) = example_plan(500);
    // One lane: segments finish one after another, so segment 0's proof sits in the
    // bucket for a whole segment's time before the aggregation reads it.
    let cluster = embedded(s3.clone(), &plugin, 1).await;
    let job = cluster.leader.submit(plugin.clone(), plan).await.unwrap();
    let key = format!("{}/seg-0", job.job);
    let object = s3.object_key(&key);
    let client = s3.client().clone();
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let head = client.head_object().bucket(s3.bucket()).key(&object).send().await;
        if head.is_ok() {
            break;
        }
        assert!(Instant::now() < until, "segment 0 never appeared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    client
        .put_object()
        .bucket(s3.bucket())
        .key(&object)
        .body(b"flipped bits, not a proof".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = tokio::time::timeout(Duration::from_secs(300), job.wait()).await.unwrap().unwrap();
    assert!(out.stats.repairs >= 1, "the corruption was detected and repaired: {:?}", out.stats);
    assert_verifies(&plugin, &out.proof);
}
