//! `proofline-leader gc` as a user runs it, on a real fs store and a real S3 server:
//! it deletes old Proofline jobs only, never other data in the store, never a job whose
//! lease is live, and `--dry-run` lists exactly what a real run deletes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proofline_runtime::leader::Lease;
use proofline_runtime::store::{ArtifactStore, FsStore, S3Store};
use proofline_tests::s3::{ACCESS_KEY, S3Server, SECRET_KEY};

const OLD: &str = "job-6752c1f0-0000000a";
const OLD_2: &str = "job-6752c1f0-0000000b";
const YOUNG: &str = "job-6752c1f0-0000000c";
const RUNNING: &str = "job-6752c1f0-0000000d";
const RELEASED: &str = "job-6752c1f0-0000000e";

fn gc(store: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut all = vec!["--store", store, "gc"];
    all.extend_from_slice(args);
    let out = common::leader_with(&all, b"", envs);
    assert_eq!(out.status.code(), Some(0), "gc {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The jobs named on stdout lines starting with `verb `.
fn named(out: &Output, verb: &str) -> BTreeSet<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(verb)?.strip_prefix(' ')?.split([' ', ':']).next().map(str::to_owned))
        .collect()
}

/// Set the modification time of every file under `dir` to `age` ago.
fn backdate(dir: &Path, age: Duration) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            backdate(&path, age);
        } else {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        }
    }
}

fn top_level(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// A store directory with a user's `docs/` folder, two old jobs, a young one, an old
/// one a live leader still holds, and an old one whose leader released its lease.
fn populated_fs_store() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn ArtifactStore> = Arc::new(FsStore::open(dir.path().to_str().unwrap()).unwrap());
    for job in [OLD, OLD_2, YOUNG, RUNNING, RELEASED] {
        store.put(&format!("{job}/seg-0.in"), b"payload").unwrap();
        store.put(&format!("{job}/journal/0000000000"), b"entry").unwrap();
    }
    let hour = Duration::from_secs(3600);
    let running = Lease::acquire(store.clone(), RUNNING, "leader-elsewhere-1", hour).unwrap();
    Lease::acquire(store.clone(), RELEASED, "leader-elsewhere-2", hour).unwrap().release().unwrap();
    drop(running); // the record stays live: its leader (another process) refreshes it
    std::fs::create_dir_all(dir.path().join("docs/design")).unwrap();
    std::fs::write(dir.path().join("docs/design/notes.md"), b"not Proofline's").unwrap();
    std::fs::write(dir.path().join("README"), b"a top-level file").unwrap();
    let ten_days = Duration::from_secs(10 * 86_400);
    for name in ["docs", OLD, OLD_2, RUNNING, RELEASED] {
        backdate(&dir.path().join(name), ten_days);
    }
    let spec = format!("fs:{}", dir.path().display());
    (dir, spec)
}

#[test]
fn gc_on_an_fs_store_deletes_old_jobs_only_never_other_folders() {
    let (dir, spec) = populated_fs_store();
    let out = gc(&spec, &["--older-than", "1d"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(named(&out, "deleting"), set(&[OLD, OLD_2, RELEASED]), "{stdout}");
    assert_eq!(top_level(dir.path()), set(&["README", "docs", YOUNG, RUNNING]), "{stdout}");
    assert_eq!(std::fs::read(dir.path().join("docs/design/notes.md")).unwrap(), b"not Proofline's");
    assert!(stdout.contains("left 1 prefix(es) that are not Proofline jobs alone"), "{stdout}");
}

#[test]
fn gc_keeps_an_old_job_whose_lease_is_live() {
    let (dir, spec) = populated_fs_store();
    let out = gc(&spec, &["--older-than", "0s"], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(dir.path().join(RUNNING).join("seg-0.in").exists(), "{stdout}");
    assert!(
        stdout.contains(&format!("skipped {RUNNING}: running (a leader holds its lease), kept")),
        "{stdout}"
    );
    assert!(stdout.contains("kept 1 running job(s)"), "{stdout}");
    assert!(!named(&out, "deleting").contains(RUNNING));
    // With --older-than 0s the young job goes too; the docs folder never does.
    assert_eq!(top_level(dir.path()), set(&["README", "docs", RUNNING]), "{stdout}");
}

#[test]
fn gc_dry_run_lists_exactly_what_the_real_run_deletes_and_deletes_nothing() {
    let (dir, spec) = populated_fs_store();
    let before = top_level(dir.path());
    let dry = gc(&spec, &["--older-than", "1d", "--dry-run"], &[]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(top_level(dir.path()), before, "a dry run deletes nothing");
    assert!(dry_out.contains("skipped docs: not a Proofline job"), "{dry_out}");
    assert!(dry_out.contains("would free 3 job(s)"), "{dry_out}");
    let real = gc(&spec, &["--older-than", "1d"], &[]);
    let would = named(&dry, "would delete");
    assert_eq!(would, named(&real, "deleting"));
    assert_eq!(would, set(&[OLD, OLD_2, RELEASED]));
    let gone: BTreeSet<String> = before.difference(&top_level(dir.path())).cloned().collect();
    assert_eq!(gone, would);
}

fn object_keys(server: &S3Server, bucket: &'static str) -> BTreeSet<String> {
    server.with_client(|c| async move {
        let listed = c.list_objects_v2().bucket(bucket).send().await.unwrap();
        listed.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
    })
}

#[test]
fn gc_on_a_bucket_without_prefix_touches_only_proofline_jobs() {
    let server = S3Server::moto();
    server.create_bucket("shared");
    let store: Arc<dyn ArtifactStore> = Arc::new(S3Store::connect(server.config("shared", "")).unwrap());
    for key in ["notes.txt", "docs/readme.md", "backups/job-1/data", "job-abc/not-an-id"] {
        store.put(key, b"someone else's").unwrap();
    }
    for job in [OLD, RUNNING] {
        store.put(&format!("{job}/seg-0.in"), b"payload").unwrap();
        store.put(&format!("{job}/manifest"), b"manifest").unwrap();
    }
    let running =
        Lease::acquire(store.clone(), RUNNING, "leader-elsewhere", Duration::from_secs(3600)).unwrap();
    let before = object_keys(&server, "shared");

    let endpoint = server.endpoint();
    let envs = [
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
    ];
    let s3 = |args: &[&str]| {
        let mut all = vec!["--s3-endpoint", &endpoint, "--s3-path-style", "--cache-mib", "0"];
        all.extend_from_slice(args);
        gc("s3://shared", &all, &envs)
    };
    let dry = s3(&["--older-than", "0s", "--dry-run"]);
    let dry_out = String::from_utf8_lossy(&dry.stdout);
    assert_eq!(object_keys(&server, "shared"), before, "a dry run deletes nothing: {dry_out}");
    for foreign in ["docs", "backups", "job-abc"] {
        assert!(dry_out.contains(&format!("skipped {foreign}: not a Proofline job")), "{dry_out}");
    }
    let real = s3(&["--older-than", "0s"]);
    let real_out = String::from_utf8_lossy(&real.stdout);
    assert_eq!(named(&dry, "would delete"), set(&[OLD]), "{dry_out}");
    assert_eq!(named(&real, "deleting"), set(&[OLD]), "{real_out}");
    assert!(!real_out.contains(SECRET_KEY) && !String::from_utf8_lossy(&real.stderr).contains(SECRET_KEY));

    let left = object_keys(&server, "shared");
    let expected: BTreeSet<String> =
        before.iter().filter(|k| !k.starts_with(&format!("{OLD}/"))).cloned().collect();
    assert_eq!(left, expected, "{real_out}");
    assert!(
        left.contains("notes.txt")
            && left.contains("docs/readme.md")
            && left.contains(&format!("{RUNNING}/lease"))
    );
    running.release().unwrap();
}
