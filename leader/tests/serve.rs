//! `proofline-leader serve` end to end: real server processes, real HTTP requests over
//! TCP, proofs checked with `proofline-leader verify`. The API (submit, poll, list,
//! download, timeline, cancel, delete), its safety (401, 413, 429, 400 with the stdio
//! message, no open API beyond loopback, the token never printed), a real keccak block,
//! retention and fair slots. Restarts, other stores and runtimes, and schemathesis:
//! `serve_restarts.rs`.

mod serve_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serve_support::*;

#[test]
fn submit_poll_download_verify_list_and_delete() {
    let (dir, store) = fs_store();
    let server = Server::start(&store, &[], &["--max-jobs", "2"], Some(TOKEN));
    let first = server.submit(&sim(6, 40_000));
    let second = server.submit(&sim(4, 40_000));
    let job = server.wait_proven(&first, Duration::from_secs(60));
    // Progress, timings, what was proven.
    assert_eq!(job["progress"]["segments_done"], 6, "{job:#}");
    assert_eq!(job["progress"]["segments_total"], 6);
    assert_eq!(job["progress"]["aggregations_done"], job["progress"]["aggregations_total"]);
    assert!(job["name"].as_str().unwrap().starts_with("sim-"), "{job:#}");
    assert!(job["summary"].as_str().unwrap().contains("6 tasks"), "{job:#}");
    assert_eq!(job["client"], "default");
    for t in ["submitted", "started", "finished"] {
        assert!(job["timings"][t].as_str().unwrap().ends_with('Z'), "{job:#}");
    }
    assert!(job["timings"]["elapsed_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(job["stats"]["segments"], 6);
    let proof = download_and_verify(&server, &first);
    assert_eq!(job["proof"]["bytes"], proof.len());
    // The timeline picture.
    let svg = server.get(&format!("/v1/jobs/{first}/timeline.svg"));
    assert_eq!(svg.status, 200, "{}", svg.text());
    assert_eq!(svg.header("content-type").as_deref(), Some("image/svg+xml"));
    assert!(svg.text().contains("<svg"), "{}", svg.text());
    // Proven: the leader's intermediate artifacts are gone, the proof is kept.
    wait_gone(&dir.path().join(&first));
    assert!(dir.path().join(format!("serve-{first}/proof")).exists());
    // The list is newest first and bounded.
    server.wait_proven(&second, Duration::from_secs(60));
    let list = server.get("/v1/jobs").json();
    let ids: Vec<&str> = list["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    assert_eq!(server.get("/v1/jobs?limit=1").json()["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(server.get("/v1/jobs?state=queued").json()["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(server.get("/v1/jobs?limit=0").error_code(), "bad_input");
    // Deleting a finished job deletes its proof.
    let deleted = server.call("DELETE", &format!("/v1/jobs/{first}"), &[], b"");
    assert_eq!(deleted.status, 204, "{}", deleted.text());
    let gone = server.get(&format!("/v1/jobs/{first}"));
    assert_eq!((gone.status, gone.error_code().as_str()), (404, "not_found"));
    assert_eq!(server.get(&format!("/v1/jobs/{first}/proof")).status, 404);
    assert!(!dir.path().join(format!("serve-{first}")).exists());
    // Clients from the header, else the query.
    let r = server.call("POST", "/v1/jobs?client=seq.b", &[("X-Proofline-Client", "rollup-a")], &sim(1, 1));
    assert_eq!((r.status, r.json()["client"].as_str()), (202, Some("rollup-a")), "{}", r.text());
    let r = server.call("POST", "/v1/jobs?client=seq.b", &[], &sim(1, 1));
    assert_eq!((r.status, r.json()["client"].as_str()), (202, Some("seq.b")), "{}", r.text());
    // Unknown jobs and routes answer in the same shape.
    assert_eq!(server.get("/v1/jobs/job-1-00000000").error_code(), "not_found");
    assert_eq!(server.get("/nope").error_code(), "not_found");
    let wrong_method = server.call("PUT", "/v1/jobs", &[], b"");
    assert_eq!((wrong_method.status, wrong_method.error_code().as_str()), (405, "method_not_allowed"));
}

#[test]
fn bad_input_gets_400_with_the_message_stdio_prints() {
    let (_dir, store) = fs_store();
    let server = Server::start(&store, &[], &[], None);
    for input in [&b"{\"tasks\": 0, \"cost\": {\"fixed\": {\"micros\": 1}}}"[..], b"not json at all"] {
        let stdio = Command::new(LEADER)
            .args(["--plugin", "sim", "--store", "mem:", "stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(input)?;
                c.wait_with_output()
            })
            .unwrap();
        assert_eq!(stdio.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&stdio.stderr);
        let expected = stderr
            .lines()
            .find_map(|l| l.strip_prefix("proofline-leader: error: "))
            .unwrap()
            .replace("on stdin", "in the request body");
        let r = server.call("POST", "/v1/jobs", &[], input);
        assert_eq!((r.status, r.error_code().as_str()), (400, "bad_input"), "{}", r.text());
        assert_eq!(r.json()["error"]["message"], expected.as_str());
    }
    let empty = server.call("POST", "/v1/jobs", &[], b"  \n");
    assert_eq!(empty.status, 400);
    let bad_client = server.call("POST", "/v1/jobs", &[("X-Proofline-Client", "two words")], &sim(1, 1));
    assert_eq!((bad_client.status, bad_client.error_code().as_str()), (400, "bad_input"));
    // Nothing was accepted.
    assert_eq!(server.get("/v1/jobs").json()["jobs"].as_array().unwrap().len(), 0);
}

#[test]
fn auth_size_limit_and_no_open_api_beyond_loopback() {
    let (_dir, store) = fs_store();
    let server = Server::start(&store, &[], &["--max-input-mib", "1"], Some(TOKEN));
    // No token, a wrong one: 401 in the error shape, nothing done.
    for auth in [None, Some("Bearer wrong-token-000000000000"), Some(TOKEN)] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
        let r = request(server.addr, "POST", "/v1/jobs", &headers, &sim(1, 1));
        assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"), "{}", r.text());
        assert_eq!(r.header("www-authenticate").as_deref(), Some("Bearer"));
        assert_eq!(request(server.addr, "GET", "/v1/jobs", &headers, b"").status, 401);
        assert_eq!(request(server.addr, "GET", "/metrics", &headers, b"").status, 401);
    }
    // Probes and the document stay open.
    assert_eq!(request(server.addr, "GET", "/livez", &[], b"").status, 200);
    assert_eq!(request(server.addr, "GET", "/readyz", &[], b"").status, 200);
    assert_eq!(request(server.addr, "GET", "/openapi.json", &[], b"").json()["openapi"], "3.0.3");
    // Over --max-input-mib: refused by its declared length before any of it is read...
    let head = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        (1 << 20) + 1
    );
    let r = raw(server.addr, head.as_bytes());
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"), "{}", r.text());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("--max-input-mib"));
    // ...and, sent chunked (no length), once the limit is crossed.
    let mut chunked = format!(
        "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..2 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 19).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 1 << 19));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"1\r\n \r\n0\r\n\r\n");
    let r = raw(server.addr, &chunked);
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"), "{}", r.text());
    // The token never shows in the log, nor in --help.
    assert!(!server.log().contains(TOKEN), "token in the log:\n{}", server.log());
    let help =
        Command::new(LEADER).args(["serve", "--help"]).env("PROOFLINE_API_TOKEN", TOKEN).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--api-token"));
    assert!(!String::from_utf8_lossy(&help.stdout).contains(TOKEN));
    // No token: only loopback.
    let open = Command::new(LEADER)
        .args(["--plugin", "sim", "--store", "mem:", "serve", "--listen", "0.0.0.0:0"])
        .env_remove("PROOFLINE_API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&open.stderr).contains("without an API token"));
}

#[test]
fn a_full_queue_answers_429_and_cancel_stops_queued_and_running_jobs() {
    let (dir, store) = fs_store();
    let server = Server::start(&store, &[], &["--max-jobs", "1", "--max-queued", "1"], None);
    let running = server.submit(&sim(40, 250_000));
    server.wait_for(&running, Duration::from_secs(30), |j| j["state"] == "running");
    // A job that is not proven has no proof yet.
    let early = server.get(&format!("/v1/jobs/{running}/proof"));
    assert_eq!((early.status, early.error_code().as_str()), (409, "not_proven"));
    let queued = server.submit(&sim(2, 1_000));
    assert_eq!(server.job(&queued)["state"], "queued");
    let full = server.call("POST", "/v1/jobs", &[], &sim(2, 1_000));
    assert_eq!((full.status, full.error_code().as_str()), (429, "queue_full"), "{}", full.text());
    let retry: u64 = full.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=600).contains(&retry));
    // Prometheus sees the same: one job running, one queued.
    let metrics = server.get("/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain"));
    for line in [r#"proofline_jobs{state="running"} 1"#, r#"proofline_jobs{state="queued"} 1"#] {
        assert!(metrics.text().lines().any(|l| l == line), "{line} missing:\n{}", metrics.text());
    }
    // Cancel the queued one: the queue has room again.
    let r = server.call("DELETE", &format!("/v1/jobs/{queued}"), &[], b"");
    assert_eq!((r.status, r.json()["state"].as_str()), (200, Some("cancelled")), "{}", r.text());
    let again = server.submit(&sim(2, 1_000));
    // Cancel the running one: it stops, its artifacts go, and the next job runs.
    let r = server.call("DELETE", &format!("/v1/jobs/{running}"), &[], b"");
    assert_eq!((r.status, r.json()["state"].as_str()), (200, Some("cancelled")), "{}", r.text());
    let job = server.job(&running);
    assert_eq!(job["state"], "cancelled");
    assert!(job["progress"]["segments_done"].as_u64().unwrap() < 40, "{job:#}");
    server.wait_proven(&again, Duration::from_secs(60));
    assert_eq!(server.job(&running)["state"], "cancelled", "a cancelled job never turns proven");
    wait_gone(&dir.path().join(&running));
    assert_eq!(server.get(&format!("/v1/jobs/{queued}/proof")).status, 409);
}

#[test]
fn a_real_keccak_block_is_proven_through_the_service() {
    let (_dir, store) = fs_store();
    let server = Server::start(&store, &["--plugin", "keccak", "--gpu", "off"], &[], Some(TOKEN));
    let block = std::fs::read(repo().join("examples/example-block.json")).unwrap();
    let id = server.submit(&block);
    let job = server.wait_proven(&id, Duration::from_secs(600));
    assert!(job["plugin"].as_str().unwrap().starts_with("keccak@"), "{job:#}");
    download_and_verify(&server, &id);
}

#[test]
fn retention_deletes_finished_jobs_and_their_proofs() {
    let (dir, store) = fs_store();
    let server = Server::start(&store, &[], &["--retention", "2s"], None);
    let id = server.submit(&sim(2, 1_000));
    server.wait_proven(&id, Duration::from_secs(60));
    assert!(dir.path().join(format!("serve-{id}")).exists());
    let until = Instant::now() + Duration::from_secs(20);
    while server.get(&format!("/v1/jobs/{id}")).status != 404 {
        assert!(Instant::now() < until, "not deleted after its retention");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!dir.path().join(format!("serve-{id}")).exists());
}

#[test]
fn a_client_with_a_backlog_does_not_keep_another_waiting_for_a_slot() {
    let (_dir, store) = fs_store();
    let server = Server::start(&store, &[], &["--max-jobs", "1"], None);
    let submit_as = |client: &str, body: &[u8]| {
        let r = server.call("POST", "/v1/jobs", &[("X-Proofline-Client", client)], body);
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["id"].as_str().unwrap().to_owned()
    };
    // a's first job holds the only slot while a queues two more, then b one.
    let a1 = submit_as("a", &sim(30, 150_000)); // 2.25 s on 2 lanes: outlasts the submissions
    let a2 = submit_as("a", &sim(2, 20_000));
    let a3 = submit_as("a", &sim(2, 20_000));
    let b1 = submit_as("b", &sim(2, 20_000));
    assert_eq!(server.job(&a1)["state"], "running");
    let started = |id: &str| {
        let job = server.wait_proven(id, Duration::from_secs(60));
        job["timings"]["started"].as_str().unwrap().to_owned()
    };
    let (a1, a2, a3, b1) = (started(&a1), started(&a2), started(&a3), started(&b1));
    // Fair queueing by client: b's job goes next although a's are older; then a's in
    // the order they came.
    assert!(a1 < b1 && b1 < a2 && a2 < a3, "started a1 {a1}, b1 {b1}, a2 {a2}, a3 {a3}");
}
