//! `proofline-leader` never prints a password: not in `--help` (env values), not for a
//! malformed AMQP URI, not for an unreachable broker, not for an S3 endpoint with
//! userinfo; with logs at `debug` so that what logs say is checked too.

mod common;

use std::process::Output;

use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY, free_port};

/// The password in every URI below, and its percent-encoded forms.
const SECRETS: [&str; 4] = ["hunter2", "hun/ter2", "hun%2Fter2", "hun%2fter2"];

const SIM: &[u8] = br#"{"tasks": 2, "cost": {"fixed": {"micros": 0}}}"#;

fn assert_no_secret(out: &Output, context: &str) {
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for secret in SECRETS.iter().chain([&SECRET_KEY]) {
        assert!(!text.contains(secret), "{context}: {secret:?} was printed:\n{text}");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_never_shows_secret_env_values() {
    let envs = [
        ("PROOFLINE_AMQP_URI", "amqp://u:hunter2@h/%2f"),
        ("PROOFLINE_S3_ENDPOINT", "http://key:hunter2@127.0.0.1:9000"),
    ];
    for args in [&["--help"][..], &["stdio", "--help"][..], &["gc", "--help"][..], &["help", "verify"][..]] {
        let out = common::leader_with(args, b"", &envs);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--amqp-uri"), "{args:?}: {help}");
        assert_no_secret(&out, &format!("{args:?}"));
    }
}

#[test]
fn amqp_uris_never_show_their_password() {
    let port = free_port(); // nothing listens there
    let uris = [
        // Malformed: the parser's own message quotes some of these whole.
        "amqp:u:hunter2@127.0.0.1".to_owned(),
        format!("amqp://u:hun/ter2@127.0.0.1:{port}/%2f"),
        "amqp://u:hunter2@127.0.0.1:notaport/%2f".to_owned(),
        "http://u:hunter2@127.0.0.1/%2f".to_owned(),
        // Valid, percent-encoded, to a port nothing listens on.
        format!("amqp://u:hun%2Fter2@127.0.0.1:{port}/%2f?connection_timeout=1000"),
        format!("amqp://u:hunter2@127.0.0.1:{port}/%2f?connection_timeout=1000"),
    ];
    for uri in &uris {
        let out = common::leader_with(
            &["--runtime", "amqp", "--amqp-uri", uri, "--plugin", "sim", "stdio"],
            SIM,
            &[("RUST_LOG", "debug")],
        );
        assert_eq!(out.status.code(), Some(1), "{uri}: {}", stderr(&out));
        assert!(stderr(&out).contains("127.0.0.1"), "the host is still named: {}", stderr(&out));
        assert_no_secret(&out, uri);
    }
}

#[test]
fn an_s3_endpoint_with_userinfo_is_shown_without_it() {
    let server = S3Server::s3s_fs();
    server.create_bucket("proofs");
    let port = server.endpoint().rsplit(':').next().unwrap().to_owned();
    let aws = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
        ("RUST_LOG", "debug"),
    ];
    // The userinfo is ignored (requests are signed with the AWS keys): the job runs.
    let endpoint = format!("http://key:hun/ter2@127.0.0.1:{port}");
    let args =
        ["--plugin", "sim", "--store", "s3://proofs/runs", "--s3-endpoint", &endpoint, "--s3-path-style"];
    let out = common::leader_with(&[&args[..], &["stdio"]].concat(), SIM, &aws);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!out.stdout.is_empty(), "a proof was written");
    assert!(
        stderr(&out).contains(&format!("s3://proofs/runs (http://127.0.0.1:{port})")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("user:password@ is ignored"), "{}", stderr(&out));
    assert_no_secret(&out, &endpoint);

    let out =
        common::leader_with(&[&args[..], &["gc", "--older-than", "1d", "--dry-run"]].concat(), b"", &aws);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_no_secret(&out, "gc");

    // Unreachable: the error names the endpoint, without its userinfo.
    let endpoint = format!("http://key:hunter2@127.0.0.1:{}", free_port());
    let out = common::leader_with(
        &[
            "--plugin",
            "sim",
            "--store",
            "s3://proofs/runs",
            "--s3-endpoint",
            &endpoint,
            "--s3-path-style",
            "stdio",
        ],
        SIM,
        &aws,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("127.0.0.1"), "{}", stderr(&out));
    assert_no_secret(&out, &endpoint);
}
