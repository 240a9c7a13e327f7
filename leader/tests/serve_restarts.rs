//! `proofline-leader serve` surviving what services meet: killed mid-job (fs and S3
//! stores) and started again, SIGTERM, a second service on the same store,
//! `--runtime amqp` with a worker process on a real RabbitMQ, and schemathesis fuzzing
//! `/openapi.json` (no 5xx, every response matching the document).

mod serve_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::*;

#[test]
fn a_service_killed_mid_job_resumes_it_and_still_serves_finished_proofs() {
    let (dir, store) = fs_store();
    // A killed leader's job lease blocks the resume until it lapses: keep it short.
    let serve = ["--max-jobs", "1", "--lease-secs", "3"];
    let mut server = Server::start(&store, &[], &serve, Some(TOKEN));
    let done = server.submit(&sim(3, 10_000));
    server.wait_proven(&done, Duration::from_secs(60));
    let proof_before = download_and_verify(&server, &done);
    let long = server.submit(&sim(40, 150_000));
    let waiting = server.submit(&sim(3, 10_000));
    server.wait_for(&long, Duration::from_secs(60), |j| j["progress"]["segments_done"].as_u64() >= Some(8));
    assert_eq!(server.job(&waiting)["state"], "queued");
    server.kill(); // SIGKILL: no cleanup of any kind
    assert!(dir.path().join(format!("{long}/manifest")).exists());

    let server = Server::start(&store, &[], &serve, Some(TOKEN));
    // The finished job is served as it was.
    assert_eq!(server.job(&done)["state"], "proven");
    assert_eq!(download_and_verify(&server, &done), proof_before);
    // The running job resumes from its journal (finished segments are not proven
    // again) and completes; the queued one runs after it.
    let job = server.wait_proven(&long, Duration::from_secs(120));
    assert!(job["stats"]["resumed_segments"].as_u64().unwrap() > 0, "{job:#}");
    download_and_verify(&server, &long);
    server.wait_proven(&waiting, Duration::from_secs(60));
    download_and_verify(&server, &waiting);
    assert!(server.log().contains("jobs restored from the store"), "{}", server.log());
}

#[test]
fn over_amqp_with_a_real_worker_process() {
    let worker_bin = Path::new(LEADER).with_file_name("proofline-worker");
    assert!(
        worker_bin.exists(),
        "{} is missing: run `cargo build -p proofline-worker` (or test the whole workspace)",
        worker_bin.display()
    );
    let broker = proofline_tests::rabbit::RabbitBroker::start_new();
    let uri = broker.amqp_uri();
    let (dir, store) = fs_store();
    let worker = Command::new(&worker_bin)
        .args(["--amqp-uri", &uri, "--name", "w1", "--health-addr", "127.0.0.1:0", "--lanes", "2"])
        .args(["--store", &store])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _worker = KillOnDrop(worker);
    let server = Server::start(&store, &["--runtime", "amqp", "--amqp-uri", &uri], &[], Some(TOKEN));
    let id = server.submit(&sim(8, 20_000));
    server.wait_proven(&id, Duration::from_secs(120));
    download_and_verify(&server, &id);
    wait_gone(&dir.path().join(&id));
}

#[test]
fn schemathesis_finds_no_server_error_and_no_response_off_the_schema() {
    let st = repo().join(".venv-schemathesis/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed: run `bash scripts/services/schemathesis.sh`{}",
        if std::env::var("CI").as_deref() == Ok("true") {
            " (a missing service is a CI failure)"
        } else {
            ""
        }
    );
    let server = Server::start("mem:", &[], &["--max-jobs", "1"], Some(TOKEN));
    // Jobs in every state for the job operations to find (besides random ids):
    // proven, failed, cancelled, running and queued.
    let proven = server.submit(&sim(2, 1_000));
    server.wait_proven(&proven, Duration::from_secs(60));
    let failing =
        br#"{"tasks": 2, "cost": {"fixed": {"micros": 1}}, "fail": {"segments": [0], "mode": "permanent"}}"#;
    let failed = server.submit(failing);
    let job = server.wait_for(&failed, Duration::from_secs(60), |j| j["state"] == "failed");
    // The plugin's own message, as the runtime's error chain carries it.
    assert!(job["error"].as_str().unwrap().contains("injected failure in segment 0"), "{job:#}");
    assert!(job["timings"]["finished"].is_string(), "{job:#}");
    // Where the failed job's time went is served too, its failed attempt counted as wasted.
    let picture = server.call("GET", &format!("/v1/jobs/{failed}/timeline.svg"), &[], b"");
    let svg = String::from_utf8_lossy(&picture.body);
    assert_eq!(picture.status, 200, "{svg}");
    assert!(svg.contains("<svg") && svg.contains("(1 wasted)"), "{svg}");
    let running = server.submit(&sim(200, 100_000));
    server.wait_for(&running, Duration::from_secs(30), |j| j["state"] == "running");
    let cancelled = server.submit(&sim(2, 1_000));
    assert_eq!(server.call("DELETE", &format!("/v1/jobs/{cancelled}"), &[], b"").status, 200);
    let queued = server.submit(&sim(2, 1_000));
    let scratch = tempfile::tempdir().unwrap();
    let ids = [&proven, &failed, &running, &cancelled, &queued].map(|id| format!("{id:?}")).join(", ");
    std::fs::write(
        scratch.path().join("schemathesis.toml"),
        format!(
            "[dictionaries.jobs]\nvalues = [{ids}]\n\n[parameters]\n\"path.id\" = {{ dictionary = \"jobs\", probability = 0.7 }}\n"
        ),
    )
    .unwrap();
    let out = Command::new(&st)
        .current_dir(scratch.path())
        .args(["--no-color", "--config-file", "schemathesis.toml"])
        .args(["run", &format!("http://{}/openapi.json", server.addr)])
        .args(["--checks", "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance"])
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        .args(["--max-examples", "40"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "schemathesis failed:\n{report}\nservice log:\n{}", server.log());
    // It reached the jobs (not only 404s for random ids), and tested every operation.
    assert!(!report.contains("Missing test data"), "{report}");
    let field =
        |name: &str| report.split(name).nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
    let selected = field("Selected:").split('/').nth(1).unwrap_or("?");
    assert_eq!(field("Tested:"), selected, "{report}");
    assert!(server.log().lines().all(|l| !l.contains("internal error")), "{}", server.log());
}

#[test]
fn sigterm_stops_the_service_and_its_running_job_resumes_on_the_next_start() {
    let (_dir, store) = fs_store();
    let serve = ["--lease-secs", "3"];
    let mut server = Server::start(&store, &[], &serve, None);
    let id = server.submit(&sim(40, 150_000));
    server.wait_for(&id, Duration::from_secs(60), |j| j["progress"]["segments_done"].as_u64() >= Some(6));
    let status = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let until = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < until, "still running 30 s after SIGTERM:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(0), "{}", server.log());
    assert!(server.log().contains("stopping: running jobs resume on the next start"), "{}", server.log());
    // Stopped, not failed nor cancelled: the next start finishes it from its journal.
    let server = Server::start(&store, &[], &serve, None);
    let job = server.wait_proven(&id, Duration::from_secs(120));
    assert!(job["stats"]["resumed_segments"].as_u64().unwrap() > 0, "{job:#}");
    download_and_verify(&server, &id);
}

#[test]
fn on_an_s3_store_a_killed_service_resumes_its_job_and_serves_its_proofs() {
    use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
    let s3 = S3Server::s3s_fs();
    s3.create_bucket("proofs");
    let endpoint = s3.endpoint();
    let global = ["--s3-endpoint", endpoint.as_str(), "--s3-path-style"];
    let serve = ["--max-jobs", "1", "--lease-secs", "3"];
    let envs = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ];
    let store = "s3://proofs/service";
    let mut server = Server::start_with(store, &global, &serve, Some(TOKEN), &envs);
    let done = server.submit(&sim(3, 10_000));
    server.wait_proven(&done, Duration::from_secs(60));
    let proof = download_and_verify(&server, &done);
    let long = server.submit(&sim(30, 150_000));
    server.wait_for(&long, Duration::from_secs(60), |j| j["progress"]["segments_done"].as_u64() >= Some(6));
    server.kill();
    assert!(!server.log().contains(SECRET_KEY));

    let server = Server::start_with(store, &global, &serve, Some(TOKEN), &envs);
    assert_eq!(download_and_verify(&server, &done), proof);
    let job = server.wait_proven(&long, Duration::from_secs(120));
    assert!(job["stats"]["resumed_segments"].as_u64().unwrap() > 0, "{job:#}");
    download_and_verify(&server, &long);
    assert!(!server.log().contains(SECRET_KEY));
}

#[test]
fn a_second_service_on_the_same_store_is_refused() {
    let (_dir, store) = fs_store();
    let first = Server::start(&store, &[], &["--lease-secs", "3"], None);
    let second = Command::new(LEADER)
        .args(["--plugin", "sim", "--store", &store, "serve", "--listen", "127.0.0.1:0", "--lease-secs", "3"])
        .env_remove("PROOFLINE_API_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("run one service per store"), "{stderr}");
    // The first one is unharmed.
    assert_eq!(first.get("/readyz").status, 200);
}
