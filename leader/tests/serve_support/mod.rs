//! Support for the `serve` tests: a `proofline-leader serve` process, raw HTTP/1
//! requests over TCP, sim inputs, and proof verification.
#![allow(dead_code)] // each test file uses its own subset

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LEADER: &str = env!("CARGO_BIN_EXE_proofline-leader");
pub const TOKEN: &str = "test-token-6f1c2a9e4b7d3085";

// ---------------------------------------------------------------- the server

/// A running `proofline-leader serve`; killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
    pub token: Option<String>,
}

impl Server {
    /// `proofline-leader GLOBAL serve --listen 127.0.0.1:0 SERVE` on `store`, sim
    /// plugin and 2 lanes unless `global` says otherwise.
    pub fn start(store: &str, global: &[&str], serve: &[&str], token: Option<&str>) -> Self {
        Self::start_with(store, global, serve, token, &[])
    }

    /// [`Server::start`] with extra environment variables.
    pub fn start_with(
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

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A request with the server's token (if it has one).
    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(auth) = &auth {
            all.push(("Authorization", auth));
        }
        request(self.addr, method, path, &all, body)
    }

    pub fn get(&self, path: &str) -> Response {
        self.call("GET", path, &[], b"")
    }

    pub fn submit(&self, body: &[u8]) -> String {
        let r = self.call("POST", "/v1/jobs", &[("Content-Type", "application/json")], body);
        assert_eq!(r.status, 202, "{}", r.text());
        let job = r.json();
        assert_eq!(job["state"], "queued");
        let id = job["id"].as_str().unwrap().to_owned();
        assert_eq!(r.header("location").as_deref(), Some(format!("/v1/jobs/{id}").as_str()));
        id
    }

    pub fn job(&self, id: &str) -> Value {
        let r = self.get(&format!("/v1/jobs/{id}"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// Poll until `done(job)`; panics with the job and log after `timeout`.
    pub fn wait_for(&self, id: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
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

    pub fn wait_proven(&self, id: &str, timeout: Duration) -> Value {
        let job = self.wait_for(id, timeout, |j| j["state"] != "queued" && j["state"] != "running");
        assert_eq!(job["state"], "proven", "{job:#}\nlog:\n{}", self.log());
        job
    }

    pub fn kill(&mut self) {
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

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    }

    /// The stable error shape; returns the code.
    pub fn error_code(&self) -> String {
        let v = self.json();
        assert!(v["error"]["message"].is_string(), "{v}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// One request on a fresh connection (`Connection: close`), read to the end.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
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
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
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

pub fn dechunk(mut data: &[u8]) -> Vec<u8> {
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

pub fn sim(tasks: u32, micros: u64) -> Vec<u8> {
    format!(r#"{{"tasks": {tasks}, "cost": {{"fixed": {{"micros": {micros}}}}}, "work": "sleep"}}"#)
        .into_bytes()
}

/// `proofline-leader verify` on `proof`: its exit code and stderr.
pub fn verify(proof: &[u8]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("job.proof");
    std::fs::write(&path, proof).unwrap();
    let out = Command::new(LEADER).args(["verify", path.to_str().unwrap()]).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn download_and_verify(server: &Server, id: &str) -> Vec<u8> {
    let r = server.get(&format!("/v1/jobs/{id}/proof"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type").as_deref(), Some("application/octet-stream"));
    let (code, stderr) = verify(&r.body);
    assert_eq!(code, Some(0), "the served proof of {id} does not verify: {stderr}");
    r.body
}

/// Wait (a little) until `path` is deleted: the service deletes a job's artifacts
/// just after it records the job's end.
pub fn wait_gone(path: &Path) {
    let until = Instant::now() + Duration::from_secs(20);
    while path.exists() {
        assert!(Instant::now() < until, "{} was not deleted", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn fs_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("fs:{}", dir.path().display());
    (dir, spec)
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

// ---------------------------------------------------------------- tests

/// A child process killed when the test ends, passed or not.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
