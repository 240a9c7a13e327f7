//! `proofline-worker` never prints a password: not in `--help` (env values), not for a
//! malformed or unreachable AMQP URI, not while it runs against a real broker whose
//! password holds `/` and `@`, and not for an S3 endpoint with userinfo. Logs run at
//! `debug` so that what the logs say is checked too.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proofline_tests::rabbit::RabbitBroker;
use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY, free_port};

/// The password of every URI below, raw and percent-encoded.
const SECRETS: [&str; 5] = ["hunter2", "hun/ter2", "hun%2Fter2", "hun%2fter2", "ter2%40"];

fn assert_no_secret(text: &str, context: &str) {
    for secret in SECRETS.iter().chain([&SECRET_KEY]) {
        assert!(!text.contains(secret), "{context}: {secret:?} was printed:\n{text}");
    }
}

fn worker(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_proofline-worker"));
    cmd.args(["--health-addr", "127.0.0.1:0", "--lanes", "1", "--gpu", "off"])
        .args(args)
        .env("RUST_LOG", "debug")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn help_never_shows_secret_env_values() {
    let out = Command::new(env!("CARGO_BIN_EXE_proofline-worker"))
        .arg("--help")
        .env("PROOFLINE_AMQP_URI", "amqp://u:hunter2@h/%2f")
        .env("PROOFLINE_S3_ENDPOINT", "http://key:hunter2@127.0.0.1:9000")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("--amqp-uri") && text(&out).contains("--s3-endpoint"), "{}", text(&out));
    assert_no_secret(&text(&out), "--help");
}

#[test]
fn malformed_and_unreachable_amqp_uris_never_show_their_password() {
    let store = tempfile::tempdir().unwrap();
    let store = format!("fs:{}", store.path().display());
    let port = free_port();
    let uris = [
        "amqp:u:hunter2@127.0.0.1".to_owned(),
        format!("amqp://u:hun/ter2@127.0.0.1:{port}/%2f"),
        "amqp://u:hunter2@127.0.0.1:notaport/%2f".to_owned(),
        format!("amqp://u:hun%2Fter2@127.0.0.1:{port}/%2f?connection_timeout=1000"),
        format!("amqp://u:hunter2@127.0.0.1:{port}/%2f?connection_timeout=1000"),
    ];
    for uri in &uris {
        let started = Instant::now();
        let out = worker(&["--amqp-uri", uri, "--store", &store], &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{uri}: {}", text(&out));
        assert!(started.elapsed() < Duration::from_secs(30), "{uri}: took {:?}", started.elapsed());
        assert!(text(&out).contains("127.0.0.1"), "the host is still named: {}", text(&out));
        assert_no_secret(&text(&out), uri);
    }
}

/// A worker on a real broker, as a user whose password holds `/` and `@`, with an S3
/// store whose endpoint carries userinfo: it starts, and nothing it says holds a secret.
#[test]
fn a_running_worker_never_logs_its_passwords() {
    let broker = RabbitBroker::start_new();
    for args in [
        &["add_user", "proof", "hun/ter2@x"][..],
        &["set_permissions", "-p", "/", "proof", ".*", ".*", ".*"][..],
    ] {
        let out = broker.rabbitmqctl(args);
        assert!(out.status.success(), "rabbitmqctl {args:?}: {}", text(&out));
    }
    let uri = format!("amqp://proof:hun%2Fter2%40x@127.0.0.1:{}/%2f", broker.port());
    let s3 = S3Server::s3s_fs();
    s3.create_bucket("proofs");
    let endpoint = s3.endpoint().replace("http://", "http://key:hunter2@");
    let aws = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ];
    let args =
        ["--amqp-uri", &uri, "--store", "s3://proofs/runs", "--s3-endpoint", &endpoint, "--s3-path-style"];
    let mut child = worker(&args, &aws).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    // Wait until it runs (or fails), then stop it the way a pod is stopped.
    let until = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none()
        && Instant::now() < until
        && !log.lock().unwrap().contains("consuming tasks from")
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(log.contains("consuming tasks from amqp://127.0.0.1:"), "the worker started:\n{log}");
    assert!(log.contains(&format!("s3://proofs/runs ({})", s3.endpoint())), "{log}");
    assert!(log.contains("user:password@ is ignored"), "{log}");
    assert!(status.success(), "{status}:\n{log}");
    assert_no_secret(&log, "worker log");
}
