//! The S3 requests behind the store, each wrapped in the retry loop.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier,
};
use bytes::Bytes;
use tokio::task::JoinSet;

use super::retry::{Failure, Policy, classify, retry};
use crate::store::JobArtifacts;

/// Everything an S3 request needs; shared by the store and its in-flight futures.
pub(crate) struct Remote {
    pub client: Client,
    pub bucket: String,
    pub prefix: String,
    pub policy: Policy,
    pub part_size: usize,
    pub part_concurrency: usize,
}

impl Remote {
    /// The object key of an artifact key.
    pub fn object_key(&self, key: &str) -> String {
        if self.prefix.is_empty() { key.to_owned() } else { format!("{}/{key}", self.prefix) }
    }

    /// HeadBucket: does the bucket exist and may we use it?
    pub async fn head_bucket(&self, policy: Policy) -> Result<(), Failure> {
        retry(policy, "HeadBucket", || async {
            let sent = self.client.head_bucket().bucket(&self.bucket).send().await;
            sent.map(drop).map_err(classify)
        })
        .await
    }

    /// One PutObject (artifacts up to the multipart threshold).
    pub async fn put_single(&self, object: &str, data: Bytes) -> Result<(), Failure> {
        retry(self.policy, "PutObject", || async {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(object)
                .content_length(data.len() as i64)
                .body(ByteStream::from(data.clone()))
                .send()
                .await;
            sent.map(drop).map_err(classify)
        })
        .await
    }

    /// A multipart upload: nothing is visible under `object` until it completes, and
    /// it is aborted (its parts freed) when it fails.
    pub async fn put_multipart(self: Arc<Self>, object: String, data: Bytes) -> Result<(), Failure> {
        let created = retry(self.policy, "CreateMultipartUpload", || async {
            self.client
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(&object)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .send()
                .await
                .map_err(classify)
        })
        .await?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| Failure::permanent("CreateMultipartUpload returned no upload id"))?
            .to_owned();
        let outcome = self.clone().upload_and_complete(&object, &upload_id, data).await;
        if let Err(failure) = &outcome {
            tracing::warn!(object, error = %failure.message, "aborting multipart upload");
            let abort = Policy { budget: Duration::from_secs(10), ..self.policy };
            let aborted = retry(abort, "AbortMultipartUpload", || async {
                let sent = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&object)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                sent.map(drop).map_err(classify)
            })
            .await;
            if let Err(e) = aborted {
                tracing::warn!(object, upload_id, error = %e.message,
                    "could not abort multipart upload (its parts stay until aborted)");
            }
        }
        outcome
    }

    async fn upload_and_complete(
        self: Arc<Self>,
        object: &str,
        upload_id: &str,
        data: Bytes,
    ) -> Result<(), Failure> {
        let len = data.len();
        let mut parts = Vec::new();
        let mut tasks = JoinSet::new();
        let mut offsets = (0..len).step_by(self.part_size.max(1)).enumerate();
        loop {
            while tasks.len() < self.part_concurrency.max(1) {
                let Some((index, start)) = offsets.next() else {
                    break;
                };
                let chunk = data.slice(start..(start + self.part_size).min(len));
                let remote = self.clone();
                let (object, upload_id) = (object.to_owned(), upload_id.to_owned());
                let number = index as i32 + 1;
                tasks.spawn(async move { remote.upload_part(&object, &upload_id, number, chunk).await });
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(part)) => parts.push(part?),
                Some(Err(e)) => return Err(Failure::permanent(format!("part upload task: {e}"))),
            }
        }
        parts.sort_by_key(|p| p.part_number());
        let completed = CompletedMultipartUpload::builder().set_parts(Some(parts)).build();
        let done = retry(self.policy, "CompleteMultipartUpload", || async {
            let sent = self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .multipart_upload(completed.clone())
                .send()
                .await;
            sent.map(drop).map_err(classify)
        })
        .await;
        match done {
            // A retried Complete whose first attempt succeeded but lost its answer.
            Err(f) if f.is_code("NoSuchUpload") && self.object_len(object).await? == Some(len) => Ok(()),
            other => other,
        }
    }

    async fn upload_part(
        &self,
        object: &str,
        upload_id: &str,
        number: i32,
        chunk: Bytes,
    ) -> Result<CompletedPart, Failure> {
        let out = retry(self.policy, "UploadPart", || async {
            self.client
                .upload_part()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(chunk.len() as i64)
                .checksum_algorithm(ChecksumAlgorithm::Crc32)
                .body(ByteStream::from(chunk.clone()))
                .send()
                .await
                .map_err(classify)
        })
        .await?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
            .build())
    }

    /// Size of an object, `None` if it does not exist.
    async fn object_len(&self, object: &str) -> Result<Option<usize>, Failure> {
        let head = retry(self.policy, "HeadObject", || async {
            self.client.head_object().bucket(&self.bucket).key(object).send().await.map_err(classify)
        })
        .await;
        match head {
            Ok(h) => Ok(h.content_length().map(|n| n as usize)),
            Err(f) if f.status == Some(404) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// GetObject, whole body. `Ok(None)` when the object does not exist.
    pub async fn get(&self, object: &str) -> Result<Option<Vec<u8>>, Failure> {
        let got = retry(self.policy, "GetObject", || async {
            let out =
                self.client.get_object().bucket(&self.bucket).key(object).send().await.map_err(classify)?;
            let body = out
                .body
                .collect()
                .await
                .map_err(|e| Failure::transient(format!("reading the body of {object}: {e}")))?;
            Ok(Vec::from(body.into_bytes()))
        })
        .await;
        match got {
            Ok(bytes) => Ok(Some(bytes)),
            Err(f) if f.is_code("NoSuchKey") || (f.status == Some(404) && f.code.is_none()) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// One page of ListObjectsV2 under `prefix`.
    async fn list_page(
        &self,
        prefix: &str,
        token: Option<String>,
    ) -> Result<aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output, Failure> {
        retry(self.policy, "ListObjectsV2", || async {
            self.client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.clone())
                .send()
                .await
                .map_err(classify)
        })
        .await
    }

    /// Delete every object under `prefix` (which ends with `/`): list a page, delete it
    /// with one DeleteObjects (at most 1000 keys), until nothing is left.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, Failure> {
        let mut deleted = 0u64;
        loop {
            let page = self.list_page(prefix, None).await?;
            let ids = page
                .contents()
                .iter()
                .filter_map(|o| o.key())
                .map(|k| ObjectIdentifier::builder().key(k).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| Failure::permanent(e.to_string()))?;
            if ids.is_empty() {
                return Ok(deleted);
            }
            let count = ids.len() as u64;
            let delete = Delete::builder()
                .set_objects(Some(ids))
                .quiet(true)
                .build()
                .map_err(|e| Failure::permanent(e.to_string()))?;
            let out = retry(self.policy, "DeleteObjects", || async {
                self.client
                    .delete_objects()
                    .bucket(&self.bucket)
                    .delete(delete.clone())
                    .send()
                    .await
                    .map_err(classify)
            })
            .await?;
            if let Some(e) = out.errors().first() {
                return Err(Failure::permanent(format!(
                    "{} of {count} objects not deleted, first {}: {} {}",
                    out.errors().len(),
                    e.key().unwrap_or("?"),
                    e.code().unwrap_or("?"),
                    e.message().unwrap_or("")
                )));
            }
            deleted += count;
        }
    }

    /// Abort the multipart uploads left under `prefix` by writers that died mid-upload
    /// (their parts are invisible but stored). Best effort: servers without
    /// ListMultipartUploads (501) are skipped; other failures are logged.
    pub async fn abort_dangling_uploads(&self, prefix: &str) -> u64 {
        let mut aborted = 0;
        let (mut key_marker, mut id_marker) = (None, None);
        loop {
            let page = retry(self.policy, "ListMultipartUploads", || async {
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(prefix)
                    .set_key_marker(key_marker.clone())
                    .set_upload_id_marker(id_marker.clone())
                    .send()
                    .await
                    .map_err(classify)
            })
            .await;
            let page = match page {
                Ok(page) => page,
                Err(f) => {
                    if f.status != Some(501) && !f.is_code("NotImplemented") {
                        tracing::warn!(prefix, error = %f.message, "cannot list multipart uploads");
                    }
                    return aborted;
                }
            };
            for upload in page.uploads() {
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                let sent = retry(self.policy, "AbortMultipartUpload", || async {
                    let sent = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await;
                    sent.map(drop).map_err(classify)
                })
                .await;
                match sent {
                    Ok(()) => aborted += 1,
                    Err(f) if f.is_code("NoSuchUpload") => {}
                    Err(f) => tracing::warn!(key, error = %f.message, "cannot abort multipart upload"),
                }
            }
            if page.is_truncated() != Some(true) {
                return aborted;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                return aborted;
            }
        }
    }

    /// Group every object under the store's prefix by job.
    pub async fn list_jobs(&self) -> Result<Vec<JobArtifacts>, Failure> {
        let root = if self.prefix.is_empty() { String::new() } else { format!("{}/", self.prefix) };
        let mut jobs: BTreeMap<String, JobArtifacts> = BTreeMap::new();
        let mut token = None;
        loop {
            let page = self.list_page(&root, token).await?;
            for object in page.contents() {
                let Some(rest) = object.key().and_then(|k| k.strip_prefix(&root)) else {
                    continue;
                };
                let Some((job, _)) = rest.split_once('/') else {
                    continue;
                };
                let modified = object
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH);
                let entry = jobs.entry(job.to_owned()).or_insert_with(|| JobArtifacts {
                    job: job.to_owned(),
                    newest: SystemTime::UNIX_EPOCH,
                    objects: 0,
                    bytes: 0,
                });
                entry.newest = entry.newest.max(modified);
                entry.objects += 1;
                entry.bytes += object.size().unwrap_or(0).max(0) as u64;
            }
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() || page.is_truncated() != Some(true) {
                return Ok(jobs.into_values().collect());
            }
        }
    }
}
