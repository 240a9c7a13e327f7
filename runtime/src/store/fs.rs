//! `fs:DIR` — artifacts as files under a directory (the default store).
//!
//! Writes go to a temporary file that is renamed into place, so a crash never leaves
//! a half-written artifact under its final name.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use super::{ArtifactStore, JobArtifacts, StoreError, check, reference};
use crate::task::ArtifactRef;

/// Artifacts stored as `DIR/job/task` files.
pub struct FsStore {
    root: PathBuf,
    tmp_counter: AtomicU64,
}

impl FsStore {
    pub fn open(dir: &str) -> Result<Self, StoreError> {
        let root = PathBuf::from(dir);
        std::fs::create_dir_all(&root).map_err(|source| io(&root, source))?;
        Ok(Self { root, tmp_counter: AtomicU64::new(0) })
    }

    fn path_of(&self, key: &str) -> Result<PathBuf, StoreError> {
        let safe =
            !key.is_empty() && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
        if !safe {
            return Err(StoreError::InvalidSpec {
                spec: key.into(),
                reason: "artifact keys are relative job/task paths".into(),
            });
        }
        Ok(self.root.join(key))
    }
}

/// Add the files under `dir` (recursively) to `job`'s totals.
fn walk(dir: &Path, job: &mut JobArtifacts) -> Result<(), StoreError> {
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
            walk(&entry.path(), job)?;
        } else {
            job.newest = job.newest.max(meta.modified().unwrap_or(SystemTime::UNIX_EPOCH));
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
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        let n = self.tmp_counter.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp-{}-{n}", std::process::id()));
        std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))?;
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
            walk(&entry.path(), &mut job)?;
            if job.objects > 0 {
                jobs.push(job);
            }
        }
        jobs.sort_by(|a, b| a.job.cmp(&b.job));
        Ok(jobs)
    }
}
