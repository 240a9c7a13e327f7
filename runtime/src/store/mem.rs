//! `mem:` — artifacts in process memory (tests, embedded benchmarks).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::{ArtifactStore, JobArtifacts, StoreError, check, reference};
use crate::task::ArtifactRef;

/// An artifact's bytes and when they were written.
type Stored = (Arc<[u8]>, SystemTime);

/// An in-memory store; clones share the same map.
#[derive(Clone, Default)]
pub struct MemStore {
    objects: Arc<Mutex<HashMap<String, Stored>>>,
}

impl MemStore {
    fn key_of<'a>(&self, uri: &'a str) -> Result<&'a str, StoreError> {
        uri.strip_prefix("mem:")
            .ok_or_else(|| StoreError::ForeignUri { uri: uri.into(), store: "mem:".into() })
    }
}

impl ArtifactStore for MemStore {
    fn describe(&self) -> String {
        "mem:".into()
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError> {
        self.objects
            .lock()
            .expect("mem store lock")
            .insert(key.to_owned(), (bytes.into(), SystemTime::now()));
        Ok(reference(format!("mem:{key}"), bytes))
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        let key = self.key_of(&artifact.uri)?;
        let bytes = self.objects.lock().expect("mem store lock").get(key).map(|(bytes, _)| bytes.clone());
        let bytes = bytes.ok_or_else(|| StoreError::NotFound { uri: artifact.uri.clone() })?;
        check(artifact, bytes.to_vec())
    }

    fn blocks(&self) -> bool {
        false
    }

    fn put_raw(&self, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.objects
            .lock()
            .expect("mem store lock")
            .insert(key.to_owned(), (bytes.into(), SystemTime::now()));
        Ok(())
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.objects.lock().expect("mem store lock").get(key).map(|b| b.0.to_vec()))
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = format!("{prefix}/");
        self.objects.lock().expect("mem store lock").retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }

    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        let objects = self.objects.lock().expect("mem store lock");
        let mut jobs: BTreeMap<&str, JobArtifacts> = BTreeMap::new();
        for (key, (bytes, modified)) in objects.iter() {
            let job = key.split_once('/').map_or(key.as_str(), |(job, _)| job);
            let entry = jobs.entry(job).or_insert_with(|| JobArtifacts {
                job: job.to_owned(),
                newest: SystemTime::UNIX_EPOCH,
                objects: 0,
                bytes: 0,
            });
            entry.newest = entry.newest.max(*modified);
            entry.objects += 1;
            entry.bytes += bytes.len() as u64;
        }
        Ok(jobs.into_values().collect())
    }
}
