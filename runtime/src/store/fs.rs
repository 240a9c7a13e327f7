//! `fs:DIR` — artifacts as files under a directory (the default store).
//!
//! A write is durable once `put` returns, and a crash never leaves a half-written
//! artifact under its final name:
//!
//! 1. the bytes go to `{name}.tmp-{16 hex}` next to the final name (host name, pid,
//!    time and OS randomness hashed: containers sharing a volume all run as PID 1, so
//!    the pid alone collides);
//! 2. the temporary file is fsync'd, then renamed onto the final name;
//! 3. the directory is fsync'd, so the rename itself survives a power cut (and so are
//!    the directories `put` created, up to the store's root).
//!
//! Temporary files are not artifacts: [`ArtifactStore::list_jobs`] does not count them,
//! and keys containing `.tmp-` are refused so that none can be mistaken for one.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{ArtifactStore, JobArtifacts, StoreError, check, reference, unique_hex};
use crate::task::ArtifactRef;

/// The marker of temporary files (`{name}.tmp-{16 hex}`).
const TMP_MARKER: &str = ".tmp-";

/// Artifacts stored as `DIR/job/task` files.
pub struct FsStore {
    root: PathBuf,
}

/// Whether a file name is a temporary file of [`FsStore::put`] (this version's or an
/// older one's `.tmp-{pid}-{n}`), not an artifact.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.contains(TMP_MARKER)
}

impl FsStore {
    pub fn open(dir: &str) -> Result<Self, StoreError> {
        let root = PathBuf::from(dir);
        std::fs::create_dir_all(&root).map_err(|source| io(&root, source))?;
        Ok(Self { root })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let safe = !key.is_empty()
            && key
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".." && !is_temp_name(part));
        if !safe {
            return Err(StoreError::InvalidSpec {
                spec: key.into(),
                reason: "artifact keys are relative job/task paths".into(),
            });
        }
        Ok(self.root.join(key))
    }

    /// Create `dir` if needed; a directory created here is fsync'd into its parent,
    /// up to the root.
    fn ensure_dir(&self, dir: &Path) -> Result<(), StoreError> {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut parent = dir.parent();
        while let Some(p) = parent {
            sync_dir(p)?;
            if p == self.root {
                break;
            }
            parent = p.parent();
        }
        Ok(())
    }
}

/// Write `bytes` to `path` (whose directory exists) so that it is durable once this
/// returns and never seen half-written: steps 1-3 of the module doc. The leader writes
/// `--out` proofs the same way.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!("{TMP_MARKER}{}", unique_hex()));
    let tmp = PathBuf::from(tmp);
    let written = write_synced(&tmp, bytes).map_err(|e| io(&tmp, e));
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))
}

/// Write `bytes` to a fresh file at `path` and fsync it.
fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = File::options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// fsync a directory, so that entries created or renamed in it are durable. File systems
/// that cannot fsync a directory (EINVAL) are let be.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Err(e) if e.kind() != std::io::ErrorKind::InvalidInput => Err(io(dir, e)),
        _ => Ok(()),
    }
}

/// Add the files under `dir` (recursively) to `job`'s totals; `files` counts every
/// file, temporary ones included.
fn walk(dir: &Path, job: &mut JobArtifacts, files: &mut u64) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Deleted while we looked (a job ending): nothing to count.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            walk(&entry.path(), job, files)?;
            continue;
        }
        *files += 1;
        // A write in progress keeps the job young, but its temporary file is no artifact.
        job.newest = job.newest.max(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
        if !is_temp_name(&entry.file_name().to_string_lossy()) {
            job.objects += 1;
            job.bytes += meta.len();
        }
    }
    Ok(())
}

fn io(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io { path: path.display().to_string(), source }
}

impl ArtifactStore for FsStore {
    fn describe(&self) -> String {
        format!("fs:{}", self.root.display())
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError> {
        let path = self.path_of(key)?;
        self.ensure_dir(path.parent().unwrap_or(&self.root))?;
        write_durably(&path, bytes)?;
        Ok(reference(format!("fs:{key}"), bytes))
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        let key = artifact
            .uri
            .strip_prefix("fs:")
            .ok_or_else(|| StoreError::ForeignUri { uri: artifact.uri.clone(), store: self.describe() })?;
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => check(artifact, bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound { uri: artifact.uri.clone() })
            }
            Err(e) => Err(io(&path, e)),
        }
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path_of(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let dir = self.path_of(prefix)?;
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&dir, e)),
            _ => Ok(()),
        }
    }

    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        let mut jobs = Vec::new();
        let entries = std::fs::read_dir(&self.root).map_err(|e| io(&self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.root, e))?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let mut job = JobArtifacts {
                job: entry.file_name().to_string_lossy().into_owned(),
                newest: SystemTime::UNIX_EPOCH,
                objects: 0,
                bytes: 0,
            };
            // A job with only a dead writer's temporary files is listed: gc removes them.
            let mut files = 0;
            walk(&entry.path(), &mut job, &mut files)?;
            if files > 0 {
                jobs.push(job);
            }
        }
        jobs.sort_by(|a, b| a.job.cmp(&b.job));
        Ok(jobs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, FsStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::open(dir.path().to_str().unwrap()).unwrap();
        (dir, store)
    }

    #[test]
    fn put_leaves_no_temporary_file_and_temp_names_are_refused_as_keys() {
        let (dir, store) = store();
        store.put("job-1/seg-0.in", b"a").unwrap();
        store.put("job-1/seg-0", b"b").unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("job-1"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| !is_temp_name(n)), "{names:?}");
        assert!(matches!(store.put("job-1/x.tmp-1-0", b"c"), Err(StoreError::InvalidSpec { .. })));
    }

    #[test]
    fn temporary_names_do_not_repeat_even_with_the_same_pid() {
        let names: std::collections::HashSet<String> = (0..10_000).map(|_| unique_hex()).collect();
        assert_eq!(names.len(), 10_000);
        assert!(names.iter().all(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit())));
    }

    #[test]
    fn list_jobs_does_not_count_temporary_files_but_lists_their_jobs() {
        let (dir, store) = store();
        store.put("job-1/seg-0", b"four").unwrap();
        std::fs::write(dir.path().join("job-1/seg-1.tmp-0123456789abcdef"), b"half-written").unwrap();
        std::fs::create_dir(dir.path().join("job-2")).unwrap();
        std::fs::write(dir.path().join("job-2/seg-0.tmp-1-0"), b"dead writer").unwrap();
        let jobs = store.list_jobs().unwrap();
        let summary: Vec<_> = jobs.iter().map(|j| (j.job.as_str(), j.objects, j.bytes)).collect();
        assert_eq!(summary, [("job-1", 1, 4), ("job-2", 0, 0)]);
    }
}
