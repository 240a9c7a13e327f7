//! `proofline-leader serve` end to end: real server processes, real HTTP requests over
//! TCP, proofs checked with `proofline-leader verify`. The API (submit, poll, list,
//! download, timeline, cancel, delete), its safety (401, 413, 429, 400 with the stdio
//! message, no open API beyond loopback, the token never printed), a real keccak block,
//! a service killed mid-job and started again, `--runtime amqp` with a worker process
//! on a real RabbitMQ, and schemathesis against `/openapi.json`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

const LEADER: &str = env!("CARGO_BIN_EXE_proofline-leader");
const TOKEN: &str = "test-token-6f1c2a9e4b7d3085";

// ---------------------------------------------------------------- the server

/// A running `proofline-leader serve`; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<String>>,
    token: Option<String>,
}

impl Server {
    /// `proofline-leader GLOBAL serve --listen 127.0.0.1:0 SERVE` on `store`, sim
    /// plugin and 2 lanes unless `global` says otherwise.
    fn start(store: &str, global: &[&str], serve: &[&str], token: Option<&str>) -> Self {
        Self::start_with(store, global, serve, token, &[])
    }

    /// [`Server::start`] with extra environment variables.
    fn start_with(
        store: &str,
        global: &[&str],
        serve: &[&str],
        token: Option<&str>,
        envs: &[(&str, &str)],
    ) -> Self {
        let mut cmd = Command::new(LEADER);
        // sim and 2 lanes by environment, so that `global` may say otherwise.
        cmd.args(["--store", store])
            .env("PROOFLINE_PLUGIN", "sim")
            .env("PROOFLINE_LANES", "2")
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(serve)
            .env("RUST_LOG", "info")
            .env_remove("PROOFLINE_API_TOKEN")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(token) = token {
            cmd.env("PROOFLINE_API_TOKEN", token);
        }
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(addr.split_whitespace().next().unwrap().parse::<SocketAddr>().unwrap());
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("the service never said it was listening; log:\n{}", log.lock().unwrap());
            }
        };
        Self { child, addr, log, token: token.map(str::to_owned) }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A request with the server's token (if it has one).
    fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = &auth {
            all.push(("Authorization", auth));
        }
        request(self.addr, method, path, &all, body)
    }

    fn get(&self, path: &str) -> Response {
        self.call("GET", path, &[], b"")
    }

    fn submit(&self, body: &[u8]) -> String {
        let r = self.call("POST", "/v1/jobs", &[("Content-Type", "application/json")], body);
        assert_eq!(r.status, 202, "{}", r.text());
        let job = r.json();
        assert_eq!(job["state"], "queued");
        let id = job["id"].as_str().unwrap().to_owned();
        assert_eq!(r.header("location").as_deref(), Some(format!("/v1/jobs/{id}").as_str()));
        id
    }

    fn job(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/jobs/{id}"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Poll until `done(job)`; panics with the job and log after `timeout`.
    fn wait_for(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let job = self.job(id);
            if done(&job) {
                return job;
            }
            assert!(Instant::now() < until, "job {id} never got there: {job:#}\nlog:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_proven(&self, id: &str, timeout: Duration) -> Value {
        let job = self.wait_for(id, timeout, |j| j["state"] != "queued" && j["state"] != "running");
        assert_eq!(job["state"], "proven", "{job:#}\nlog:\n{}", self.log());
        job
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- HTTP/1.1 by hand

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    /// The stable error shape; returns the code.
    fn error_code(&self) -> String {
        let v = self.json();
        assert!(v["error"]["message"].is_string(), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    raw(addr, &[head.as_bytes(), body].concat())
}

/// Send `bytes` as they are and parse the response. The response is read while the
/// request is written: a server that refuses a body answers before reading it all,
/// and a writer cut short by it is fine.
fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let bytes = bytes.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&bytes);
    });
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
            // A reset after the response (the server refused the rest of a large body).
            Err(e) => {
                assert!(!data.is_empty(), "no response: {e}");
                break;
            }
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    sender.join().unwrap();
    let split = data.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8(data[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = data[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    } else if let Some((_, len)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        body.truncate(len.parse().unwrap());
    }
    Response { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

// ---------------------------------------------------------------- helpers

fn sim(tasks: u32, micros: u64) -> Vec<u8> {
    format!(r#"{{"tasks": {tasks}, "cost": {{"fixed": {{"micros": {micros}}}}}, "work": "sleep"}}"#)
        .into_bytes()
}

/// `proofline-leader verify` on `proof`: its exit code and stderr.
fn verify(proof: &[u8]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.proof");
    std::fs::write(&path, proof).unwrap();
    let out = Command::new(LEADER).args(["verify", path.to_str().unwrap()]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn download_and_verify(server: &Server, id: &str) -> Vec<u8> {
    let r = server.get(&format!("/v1/jobs/{id}/proof"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("application/octet-stream"));
    let (code, stderr) = verify(&r.body);
    assert_eq!(code, Some(0), "the served proof of {id} does not verify: {stderr}");
    r.body
}

/// Wait (a little) until `path` is deleted: the service deletes a job's artifacts
/// just after it records the job's end.
fn wait_gone(path: &Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while path.exists() {
        assert!(Instant::now() < until, "{} was not deleted", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn fs_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("fs:{}", dir.path().display());
    (dir, spec)
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------- tests

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

/// A child process killed when the test ends, passed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
