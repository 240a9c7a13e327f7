//! The `kube` backend against a mocked API server (`tower-test`; no Kubernetes API
//! server can run on these machines): the exact requests it makes, which are the only
//! verbs the Role in `deploy/kubernetes` grants (`deployments/scale`: get, patch;
//! `pods`: list, patch).

use std::time::Duration;

use http::{Method, Request, Response};
use kube::client::Body;
use proofline_autoscaler::backend::kube::{DELETION_COST, KubeBackend};
use proofline_autoscaler::backend::{Backend, PoolView};
use proofline_autoscaler::policy::PoolSpec;
use serde_json::{Value, json};
use tower_test::mock::{Handle, SendResponse};

const NS: &str = "proofline";
const SCALE: &str = "/apis/apps/v1/namespaces/proofline/deployments/proofline-worker-gpu/scale";
const SELECTOR: &str = "app.kubernetes.io/name=proofline-worker,proofline.dev/pool=gpu";

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn pool() -> PoolSpec {
    PoolSpec { name: "gpu".into(), target: "proofline-worker-gpu".into(), rate: 4.0, min: 0, max: 8 }
}

fn backend() -> (KubeBackend, ApiHandle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, NS);
    (KubeBackend::new(client, NS, 9464), handle)
}

async fn next(handle: &mut ApiHandle) -> (Request<Body>, Value, SendResponse<Response<Body>>) {
    let (request, send) = tokio::time::timeout(Duration::from_secs(5), handle.next_request())
        .await
        .expect("a request within 5 s")
        .expect("a request");
    let (parts, body) = request.into_parts();
    let bytes = http_body_util_collect(body).await;
    let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    (Request::from_parts(parts, Body::empty()), json, send)
}

async fn http_body_util_collect(body: Body) -> Vec<u8> {
    body.collect_bytes().await.unwrap().to_vec()
}

fn reply(send: SendResponse<Response<Body>>, value: Value) {
    send.send_response(
        Response::builder().status(200).body(Body::from(serde_json::to_vec(&value).unwrap())).unwrap(),
    );
}

fn scale(replicas: u32) -> Value {
    json!({
        "apiVersion": "autoscaling/v1", "kind": "Scale",
        "metadata": {"name": "proofline-worker-gpu", "namespace": NS},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": SELECTOR}
    })
}

fn pod(name: &str, ip: Option<&str>, phase: &str, conditions: Value, cost: Option<&str>) -> Value {
    let mut annotations = json!({});
    if let Some(c) = cost {
        annotations[DELETION_COST] = json!(c);
    }
    json!({
        "metadata": {"name": name, "namespace": NS, "annotations": annotations,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "status": {"phase": phase, "podIP": ip, "conditions": conditions}
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Serve the two reads of `observe`: the scale subresource, then the pod list.
async fn serve_observe(handle: &mut ApiHandle, replicas: u32, pods: Vec<Value>) {
    let (request, body, send) = next(handle).await;
    assert_eq!((request.method(), request.uri().path()), (&Method::GET, SCALE));
    assert_eq!(body, Value::Null);
    reply(send, scale(replicas));
    let (request, _, send) = next(handle).await;
    assert_eq!((request.method(), request.uri().path()), (&Method::GET, "/api/v1/namespaces/proofline/pods"));
    let query = percent_decode(request.uri().query().unwrap_or_default());
    assert!(query.split('&').any(|kv| kv == format!("labelSelector={SELECTOR}")), "{query}");
    reply(send, json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": pods}));
}

fn three_pods() -> Vec<Value> {
    let ready = json!([{"type": "Ready", "status": "True"}]);
    let unschedulable = json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]);
    vec![
        pod("w-a", Some("10.0.0.1"), "Running", ready.clone(), Some("0")),
        pod("w-b", Some("10.0.0.2"), "Running", ready, None),
        pod("w-c", None, "Pending", unschedulable, None),
    ]
}

async fn observe(backend: &mut KubeBackend, handle: &mut ApiHandle) -> PoolView {
    let spec = pool();
    let (view, ()) = tokio::join!(backend.observe(&spec), serve_observe(handle, 3, three_pods()));
    view.unwrap()
}

#[tokio::test]
async fn observe_reads_the_scale_subresource_and_the_pool_pods_only() {
    let (mut backend, mut handle) = backend();
    let view = observe(&mut backend, &mut handle).await;
    assert_eq!(view.now.replicas, 3);
    assert_eq!(view.now.pending_unschedulable, 1);
    assert!(view.now.oldest_pending.unwrap() > Duration::from_secs(3600), "pending since 2026-01-01");
    let names: Vec<_> = view.workers.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["w-a", "w-b", "w-c"]);
    assert_eq!(view.workers[0].metrics.as_ref().unwrap().url(), "http://10.0.0.1:9464/metrics");
    assert!(view.workers[2].metrics.is_none() && view.workers[2].starting);
    assert!(!view.workers[0].starting && view.workers[0].deletion_cost == Some(0));
}

#[tokio::test]
async fn lowering_ranks_pods_by_deletion_cost_then_patches_the_scale() {
    let (mut backend, mut handle) = backend();
    let view = observe(&mut backend, &mut handle).await;
    let spec = pool();
    // w-a idle (already annotated 0: no patch), w-b busy, w-c pending (0).
    let costs = [0, 10_003, 0];
    let api = async {
        let mut patched = Vec::new();
        for _ in 0..2 {
            let (request, body, send) = next(&mut handle).await;
            assert_eq!(request.method(), Method::PATCH);
            assert_eq!(request.headers()["content-type"], "application/merge-patch+json");
            let pod =
                request.uri().path().strip_prefix("/api/v1/namespaces/proofline/pods/").unwrap().to_owned();
            patched.push((pod, body["metadata"]["annotations"][DELETION_COST].clone()));
            reply(send, pod_stub(&request));
        }
        assert_eq!(patched, [("w-b".to_owned(), json!("10003")), ("w-c".to_owned(), json!("0"))]);
        let (request, body, send) = next(&mut handle).await;
        assert_eq!((request.method(), request.uri().path()), (&Method::PATCH, SCALE));
        assert_eq!(request.headers()["content-type"], "application/merge-patch+json");
        assert_eq!(body, json!({"spec": {"replicas": 2}}));
        reply(send, scale(2));
    };
    let (done, ()) = tokio::join!(backend.scale(&spec, &view, 2, &costs), api);
    done.unwrap();
}

fn pod_stub(request: &Request<Body>) -> Value {
    let name = request.uri().path().rsplit('/').next().unwrap();
    pod(name, None, "Running", json!([]), None)
}

#[tokio::test]
async fn raising_patches_only_the_scale_and_the_same_size_patches_nothing() {
    let (mut backend, mut handle) = backend();
    let view = observe(&mut backend, &mut handle).await;
    let spec = pool();
    let api = async {
        let (request, body, send) = next(&mut handle).await;
        assert_eq!((request.method(), request.uri().path()), (&Method::PATCH, SCALE));
        assert_eq!(body, json!({"spec": {"replicas": 5}}));
        reply(send, scale(5));
    };
    let (done, ()) = tokio::join!(backend.scale(&spec, &view, 5, &[0, 0, 0]), api);
    done.unwrap();
    backend.scale(&spec, &view, 3, &[0, 0, 0]).await.unwrap();
    let extra = tokio::time::timeout(Duration::from_millis(200), handle.next_request()).await;
    assert!(extra.is_err(), "no request when nothing changes");
}

#[tokio::test]
async fn an_api_error_is_reported_with_what_was_being_done() {
    let (mut backend, mut handle) = backend();
    let spec = pool();
    let api = async {
        let (_, _, send) = next(&mut handle).await;
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
            "message": "deployments.apps \"proofline-worker-gpu\" is forbidden", "code": 403});
        send.send_response(
            Response::builder().status(403).body(Body::from(serde_json::to_vec(&status).unwrap())).unwrap(),
        );
    };
    let (observed, ()) = tokio::join!(backend.observe(&spec), api);
    let message = format!("{:#}", anyhow::Error::from(observed.unwrap_err()));
    assert!(
        message.contains("reading the scale of proofline-worker-gpu") && message.contains("forbidden"),
        "{message}"
    );
}
