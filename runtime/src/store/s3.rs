//! `s3://bucket/prefix` — artifacts as objects in an S3 bucket (AWS, MinIO, moto,
//! s3s-fs, any S3-compatible server).
//!
//! * The [`ArtifactStore`] trait is synchronous and is called both from lane threads
//!   and from inside tokio tasks, so the store owns a small private tokio runtime:
//!   every request runs there and the caller waits on a channel. It never calls
//!   `block_on` on the caller's runtime (which panics inside async contexts).
//! * Objects are `{prefix}/{key}`; references are `s3:{key}` (the bucket and prefix
//!   come from the store's config, so a store can move between buckets).
//! * Small artifacts are one PutObject; larger ones a multipart upload (CRC32 per
//!   part), aborted on failure: S3 shows the object only once the upload completes,
//!   so a half-written artifact is never visible under its key.
//! * Transient failures are retried within a time budget ([`S3Config::retry_budget`]);
//!   permanent ones fail at once with a message naming bucket and endpoint.
//! * `delete_prefix` also aborts multipart uploads left under the prefix by writers
//!   that died mid-upload.
//! * Nothing sets lifecycle rules or expiry: artifacts stay until deleted.

mod config;
mod ops;
mod retry;

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;

pub use aws_sdk_s3 as sdk;
pub use config::{S3Config, S3Credentials};

use self::ops::Remote;
use self::retry::{Failure, Policy};
use super::{ArtifactStore, JobArtifacts, StoreError, check, reference};
use crate::task::ArtifactRef;

/// An artifact store on S3.
///
/// ```no_run
/// use proofline_runtime::store::{ArtifactStore, S3Config, S3Store};
/// let mut config = S3Config::from_spec("s3://proofs/cluster-a")?;
/// config.endpoint = Some("http://127.0.0.1:9000".into()); // MinIO; None for AWS
/// config.path_style = true;
/// let store = S3Store::connect(config)?; // fails fast on a wrong bucket/credentials
/// let r = store.put("job-1/seg-0", b"proof")?;
/// assert_eq!(r.uri, "s3:job-1/seg-0");
/// assert_eq!(store.get(&r)?, b"proof");
/// # Ok::<(), proofline_runtime::store::StoreError>(())
/// ```
pub struct S3Store {
    remote: Arc<Remote>,
    label: String,
    multipart_threshold: usize,
    exec: Exec,
}

impl S3Store {
    /// Build the client and check the bucket (HeadBucket) within
    /// [`S3Config::probe_budget`]: a missing bucket, rejected credentials or an
    /// unreachable endpoint is an error within seconds, not a hang.
    pub fn connect(config: S3Config) -> Result<Self, StoreError> {
        let label = config.describe();
        let unavailable = |reason: String| StoreError::Unavailable { store: label.clone(), reason };
        let exec = Exec::new().map_err(|e| unavailable(format!("starting its runtime: {e}")))?;
        let client = {
            let config = config.clone();
            exec.run(async move { config.sdk_client().await })
                .ok_or_else(|| unavailable("building the S3 client failed".into()))?
        };
        let remote = Arc::new(Remote {
            client,
            bucket: config.bucket.clone(),
            prefix: config.prefix.clone(),
            policy: Policy {
                budget: config.retry_budget,
                attempt_timeout: config.attempt_timeout,
                strict: false,
                base_backoff: retry::BASE_BACKOFF,
            },
            part_size: config.part_size.max(5 << 20),
            part_concurrency: config.part_concurrency,
        });
        let probe = Policy {
            budget: config.probe_budget,
            attempt_timeout: config.probe_budget.min(config.connect_timeout * 2),
            strict: true,
            base_backoff: retry::BASE_BACKOFF,
        };
        let r = remote.clone();
        let probed = exec
            .run(async move { r.head_bucket(probe).await })
            .unwrap_or_else(|| Err(Failure::permanent("the probe task failed")));
        if let Err(f) = probed {
            let reason = match f.status {
                Some(404) => format!("bucket {} does not exist", config.bucket),
                Some(403) => format!(
                    "access to bucket {} denied (HTTP 403): check the credentials \
                     (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity) \
                     and the bucket policy",
                    config.bucket
                ),
                Some(301) => {
                    format!("bucket {} is in another region: set the region (AWS_REGION)", config.bucket)
                }
                _ if f.transient => {
                    let hint = if config.endpoint.is_some() && !config.path_style {
                        " (S3-compatible servers usually need path-style addressing: --s3-path-style)"
                    } else {
                        ""
                    };
                    format!("endpoint unreachable: {}{hint}", f.reason(&config.bucket))
                }
                _ => f.reason(&config.bucket),
            };
            return Err(unavailable(reason));
        }
        tracing::info!(store = %label, "S3 artifact store ready");
        Ok(Self { remote, label, multipart_threshold: config.multipart_threshold, exec })
    }

    /// The SDK client the store uses (administration, tests).
    pub fn client(&self) -> &sdk::Client {
        &self.remote.client
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.remote.bucket
    }

    /// The object key under which artifact `key` is stored (`{prefix}/{key}`).
    pub fn object_key(&self, key: &str) -> String {
        self.remote.object_key(key)
    }

    fn key_of<'a>(&self, uri: &'a str) -> Result<&'a str, StoreError> {
        let key = uri
            .strip_prefix("s3:")
            .ok_or_else(|| StoreError::ForeignUri { uri: uri.into(), store: self.label.clone() })?;
        valid_key(key)?;
        Ok(key)
    }

    fn remote_error(&self, op: &'static str, key: &str, f: Failure) -> StoreError {
        StoreError::Remote {
            store: self.label.clone(),
            op,
            key: key.into(),
            reason: f.reason(&self.remote.bucket),
            transient: f.transient,
        }
    }

    fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        key: &str,
        fut: impl Future<Output = Result<T, Failure>> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.exec
            .run(fut)
            .unwrap_or_else(|| Err(Failure::permanent("the request task panicked")))
            .map_err(|f| self.remote_error(op, key, f))
    }
}

/// Artifact keys are relative `job/task` paths.
fn valid_key(key: &str) -> Result<(), StoreError> {
    let safe = !key.is_empty() && key.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    if safe {
        Ok(())
    } else {
        Err(StoreError::InvalidSpec {
            spec: key.into(),
            reason: "artifact keys are relative job/task paths".into(),
        })
    }
}

impl ArtifactStore for S3Store {
    fn describe(&self) -> String {
        self.label.clone()
    }

    fn put(&self, key: &str, bytes: &[u8]) -> Result<ArtifactRef, StoreError> {
        valid_key(key)?;
        let object = self.remote.object_key(key);
        let data = Bytes::copy_from_slice(bytes);
        let remote = self.remote.clone();
        if bytes.len() > self.multipart_threshold {
            self.run("multipart upload", key, remote.put_multipart(object, data))?;
        } else {
            self.run("put", key, async move { remote.put_single(&object, data).await })?;
        }
        Ok(reference(format!("s3:{key}"), bytes))
    }

    fn get(&self, artifact: &ArtifactRef) -> Result<Vec<u8>, StoreError> {
        let key = self.key_of(&artifact.uri)?;
        let object = self.remote.object_key(key);
        let remote = self.remote.clone();
        match self.run("get", key, async move { remote.get(&object).await })? {
            Some(bytes) => check(artifact, bytes),
            None => Err(StoreError::NotFound { uri: artifact.uri.clone() }),
        }
    }

    fn get_raw(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        valid_key(key)?;
        let object = self.remote.object_key(key);
        let remote = self.remote.clone();
        self.run("get", key, async move { remote.get(&object).await })
    }

    fn delete_prefix(&self, prefix: &str) -> Result<(), StoreError> {
        valid_key(prefix)?;
        let object_prefix = format!("{}/", self.remote.object_key(prefix));
        let remote = self.remote.clone();
        let (deleted, aborted) = self.run("delete_prefix", prefix, async move {
            let deleted = remote.delete_prefix(&object_prefix).await?;
            Ok((deleted, remote.abort_dangling_uploads(&object_prefix).await))
        })?;
        tracing::debug!(store = %self.label, prefix, deleted, aborted, "deleted artifacts");
        Ok(())
    }

    fn list_jobs(&self) -> Result<Vec<JobArtifacts>, StoreError> {
        let remote = self.remote.clone();
        self.run("list_jobs", "", async move { remote.list_jobs().await })
    }
}

/// The store's private runtime. Requests are spawned on it and awaited through a
/// channel, so callers may be plain threads or tokio tasks alike.
struct Exec {
    rt: Option<tokio::runtime::Runtime>,
}

impl Exec {
    fn new() -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("proofline-s3")
            .enable_all()
            .build()?;
        Ok(Self { rt: Some(rt) })
    }

    /// Run `fut` on the private runtime and wait for it; `None` if it panicked.
    fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Option<T> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.as_ref()?.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok()
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which panics inside an async context.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
