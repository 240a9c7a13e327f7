//! `mem:` — artifacts in process memory (tests, embedded benchmarks).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{ArtifactStore, StoreError, check, reference};
use crate::task::ArtifactRef;

/// An in-memory store; clones share the same map.
#[derive(Clone, Default)]
pub struct MemStore {
    objects: Arc<Mutex<HashMap<String, Arc<[u8]>>>>,
}

impl MemStore {
    fn key_of<'a>(&self, uri: &'a str) -> Result<&'a str, StoreError> {
        uri.strip_prefix("mem:")
            .ok_or_else(|| StoreError::ForeignUri {
                uri: uri.into(),
                store: "mem:".into(),
            })
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
            .insert(key.to_owned(), bytes.into());
        Ok(reference(format!("mem:{key}"), bytes))
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        let key = self.key_of(&artifact.uri)?;
        let bytes = self
            .objects
            .lock()
            .expect("mem store lock")
            .get(key)
            .cloned();
        let bytes = bytes.ok_or_else(|| StoreError::NotFound {
            uri: artifact.uri.clone(),
        })?;
        check(artifact, bytes.to_vec())
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        let prefix = format!("{prefix}/");
        self.objects
            .lock()
            .expect("mem store lock")
            .retain(|k, _| !k.starts_with(&prefix));
        Ok(())
    }
}
