//! Configuration of an [`S3Store`](super::S3Store) and construction of its SDK client.
//!
//! An endpoint URL may arrive with `user:password@` in it (copied from a MinIO console,
//! say). S3 requests are signed with AWS credentials, never with URL userinfo, so it is
//! removed before the SDK sees the URL and never shown in logs or errors.

use std::fmt;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::redact::without_userinfo;
use crate::store::StoreError;

/// Region used when neither the config, the environment nor the profile names one.
pub const FALLBACK_REGION: &str = "us-east-1";

/// Static credentials (tests, MinIO). `Debug` never prints the secret.
#[derive(Clone)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Where and how an [`S3Store`](super::S3Store) talks to S3.
///
/// ```
/// use proofline_runtime::store::S3Config;
/// let mut config = S3Config::from_spec("s3://proofs/cluster-a").unwrap();
/// config.endpoint = Some("http://127.0.0.1:9000".into());
/// config.path_style = true;
/// assert_eq!(config.describe(), "s3://proofs/cluster-a (http://127.0.0.1:9000)");
/// ```
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix without leading/trailing `/` (may be empty): objects are
    /// `{prefix}/{job}/{task}`.
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers; `None` = AWS, or `AWS_ENDPOINT_URL_S3` /
    /// `AWS_ENDPOINT_URL` from the environment.
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual hosts.
    pub path_style: bool,
    /// Region; `None` = `AWS_REGION` / `AWS_DEFAULT_REGION`, the profile, else
    /// [`FALLBACK_REGION`].
    pub region: Option<String>,
    /// Static credentials; `None` = the standard AWS chain (environment, profile, web
    /// identity, container and instance metadata).
    pub credentials: Option<S3Credentials>,
    /// How long an operation keeps retrying transient failures (5xx, throttling,
    /// timeouts, refused connections) before it fails.
    pub retry_budget: Duration,
    /// Retry budget of the startup probe in [`S3Store::connect`](super::S3Store::connect).
    pub probe_budget: Duration,
    /// TCP/TLS connect timeout of one attempt.
    pub connect_timeout: Duration,
    /// Time limit of one attempt of one request (a part, a small object, a list page).
    pub attempt_timeout: Duration,
    /// Artifacts larger than this are written with a multipart upload.
    pub multipart_threshold: usize,
    /// Part size of multipart uploads (S3 needs at least 5 MiB).
    pub part_size: usize,
    /// Parts uploaded at once by one multipart upload.
    pub part_concurrency: usize,
}

/// Like a derived `Debug`, with the endpoint's userinfo removed.
impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint.as_deref().map(|e| without_userinfo(e).0))
            .field("path_style", &self.path_style)
            .field("region", &self.region)
            .field("credentials", &self.credentials)
            .field("retry_budget", &self.retry_budget)
            .field("probe_budget", &self.probe_budget)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("multipart_threshold", &self.multipart_threshold)
            .field("part_size", &self.part_size)
            .field("part_concurrency", &self.part_concurrency)
            .finish()
    }
}

impl S3Config {
    /// A config with defaults for `bucket` and `prefix`.
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_owned(),
            endpoint: None,
            path_style: false,
            region: None,
            credentials: None,
            retry_budget: Duration::from_secs(60),
            probe_budget: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(2),
            attempt_timeout: Duration::from_secs(120),
            multipart_threshold: 8 << 20,
            part_size: 8 << 20,
            part_concurrency: 4,
        }
    }

    /// Parse `s3://bucket` or `s3://bucket/prefix/...`.
    pub fn from_spec(spec: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| StoreError::InvalidSpec { spec: spec.into(), reason: reason.into() };
        let rest = spec.strip_prefix("s3://").ok_or_else(|| invalid("an S3 store is s3://bucket/prefix"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(invalid(
                "the bucket name must be 3-63 characters: lowercase letters, digits, '-', '.'",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") || prefix.contains('\\')
        {
            return Err(invalid("the prefix must be a plain a/b/c path"));
        }
        Ok(Self::new(bucket, prefix))
    }

    /// `s3://bucket/prefix (endpoint)`, never containing credentials.
    pub fn describe(&self) -> String {
        let from_env = || {
            ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|e| !e.is_empty()))
        };
        let endpoint = match self.endpoint.clone().or_else(from_env) {
            Some(e) => without_userinfo(&e).0,
            None => match &self.region {
                Some(r) => format!("aws {r}"),
                None => "aws".into(),
            },
        };
        if self.prefix.is_empty() {
            format!("s3://{} ({endpoint})", self.bucket)
        } else {
            format!("s3://{}/{} ({endpoint})", self.bucket, self.prefix)
        }
    }

    /// Build an SDK client configured like the store's (endpoint, region, credentials,
    /// timeouts; SDK retries off: the store retries with its own time budget).
    ///
    /// Must be awaited inside a tokio runtime. Useful for administration next to a
    /// store (creating a bucket in tests, inspecting objects).
    pub async fn sdk_client(&self) -> aws_sdk_s3::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder().connect_timeout(self.connect_timeout).build();
        // No instance-metadata lookup for the region: it stalls startup off EC2.
        let region = RegionProviderChain::first_try(self.region.clone().map(Region::new))
            .or_else(aws_config::environment::EnvironmentVariableRegionProvider::new())
            .or_else(aws_config::profile::ProfileFileRegionProvider::new())
            .or_else(Region::from_static(FALLBACK_REGION));
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled())
            .region(region);
        if let Some(c) = &self.credentials {
            loader = loader.credentials_provider(Credentials::new(
                c.access_key_id.clone(),
                c.secret_access_key.clone(),
                None,
                None,
                "proofline-static",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            let (endpoint, had_userinfo) = without_userinfo(endpoint);
            if had_userinfo {
                tracing::warn!(
                    endpoint = %endpoint,
                    "the S3 endpoint's user:password@ is ignored: S3 requests are signed with \
                     AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile, web identity)"
                );
            }
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(self.path_style).build();
        aws_sdk_s3::Client::from_conf(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let c = S3Config::from_spec("s3://bucket-1/a/b/").unwrap();
        assert_eq!((c.bucket.as_str(), c.prefix.as_str()), ("bucket-1", "a/b"));
        let c = S3Config::from_spec("s3://bucket-1").unwrap();
        assert_eq!(c.prefix, "");
        assert_eq!(c.describe(), "s3://bucket-1 (aws)");
        for bad in ["s3://", "s3://B", "s3://ab/x", "s3://bucket/../x", "s3://b_c/x"] {
            assert!(S3Config::from_spec(bad).is_err(), "{bad}");
        }
        assert!(S3Config::from_spec("s3://ab").is_err());
    }

    #[test]
    fn endpoint_userinfo_is_removed() {
        let cases = [
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000", false),
            ("http://key:hunter2@127.0.0.1:9000", "http://127.0.0.1:9000", true),
            ("https://key:hun/ter@2@minio.local/base", "https://minio.local/base", true),
            ("key:hunter2@minio.local", "minio.local", true),
        ];
        for (url, shown, had) in cases {
            assert_eq!(without_userinfo(url), (shown.to_owned(), had), "{url}");
        }
        let mut c = S3Config::new("bucket", "runs");
        c.endpoint = Some("http://key:hunter2@127.0.0.1:9000".into());
        assert_eq!(c.describe(), "s3://bucket/runs (http://127.0.0.1:9000)");
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn debug_hides_the_secret() {
        let mut c = S3Config::new("bucket", "");
        c.credentials =
            Some(S3Credentials { access_key_id: "AKIA".into(), secret_access_key: "very-secret".into() });
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIA") && !shown.contains("very-secret"), "{shown}");
    }
}
