//! Error classification and the time-budgeted retry loop of the S3 store.
//!
//! The SDK's own retries are off: its policy counts attempts, while a store must ride
//! out an outage of a given *duration* (a server restarting for 10 s). Transient
//! failures — 5xx, 408, 429/SlowDown, timeouts, I/O errors such as a refused
//! connection — are retried with exponential backoff and jitter until the budget is
//! spent; everything else (NoSuchBucket, AccessDenied, InvalidAccessKeyId,
//! SignatureDoesNotMatch, ...) fails at once.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// Error codes that S3 servers use for "try again later".
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// One failed attempt (or the last one of a retried operation).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub transient: bool,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    /// Attempts made and time spent, when retries gave up.
    pub gave_up: Option<(u32, Duration)>,
}

impl Failure {
    pub fn transient(message: impl Into<String>) -> Self {
        Self { transient: true, status: None, code: None, message: message.into(), gave_up: None }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        Self { transient: false, ..Self::transient(message) }
    }

    pub fn is_code(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    /// A readable reason: a hint for well-known permanent errors, then the details.
    pub fn reason(&self, bucket: &str) -> String {
        let hint = match (self.code.as_deref(), self.status) {
            (Some("NoSuchBucket"), _) => format!("bucket {bucket} does not exist: "),
            (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) => {
                "the credentials were rejected: ".to_owned()
            }
            (Some("AccessDenied"), _) | (_, Some(403)) => {
                format!("access to bucket {bucket} denied: ")
            }
            _ => String::new(),
        };
        let tail = match self.gave_up {
            Some((attempts, spent)) => format!(
                " (gave up after {attempts} attempt{} in {:.1} s)",
                if attempts == 1 { "" } else { "s" },
                spent.as_secs_f64()
            ),
            None => String::new(),
        };
        format!("{hint}{}{tail}", self.message)
    }
}

/// Classify an SDK error: transient (retry) or permanent (fail now).
pub(crate) fn classify<E>(err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = chain(&err);
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code().map(str::to_owned);
    let transient = match &err {
        SdkError::TimeoutError(_) => true,
        // Refused, reset or half-closed connections are "io" or "other"; only a request
        // the client itself could not build ("user") will fail the same way again.
        SdkError::DispatchFailure(d) => !d.is_user(),
        // A response that could not be read or parsed: a server dying mid-response.
        SdkError::ResponseError(_) => status.is_none_or(|s| s >= 500),
        SdkError::ServiceError(_) => {
            status.is_some_and(|s| (s >= 500 && s != 501) || s == 408 || s == 429)
                || code.as_deref().is_some_and(|c| TRANSIENT_CODES.contains(&c))
        }
        _ => false,
    };
    Failure { transient, status, code, message, gave_up: None }
}

/// `error: cause: cause...`, leaving out causes whose text is already shown.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// How one operation retries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// Total time after which no new attempt starts.
    pub budget: Duration,
    /// Time limit of one attempt.
    pub attempt_timeout: Duration,
    /// Cut the last attempt short at the budget (the startup probe must answer fast).
    pub strict: bool,
    /// First backoff step; it doubles per attempt up to [`MAX_BACKOFF`].
    pub base_backoff: Duration,
}

/// Default first backoff step.
pub(crate) const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest pause between attempts (a recovered server is noticed within this).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Exponential backoff with "equal jitter": half the step fixed, half random.
pub(crate) fn backoff(base: Duration, attempt: u32) -> Duration {
    let step = base.saturating_mul(1u32 << attempt.min(16)).min(MAX_BACKOFF);
    let half = step / 2;
    half + half.mul_f64(jitter())
}

/// A cheap uniform number in [0, 1) (no RNG dependency needed for jitter): every
/// `RandomState` is keyed differently.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let h = std::collections::hash_map::RandomState::new().build_hasher();
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// Run `op` until it succeeds, fails permanently, or the policy's budget is spent.
pub(crate) async fn retry<T, F, Fut>(policy: Policy, what: &str, mut op: F) -> Result<T, Failure>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let start = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let limit = if policy.strict {
            policy
                .attempt_timeout
                .min(policy.budget.saturating_sub(start.elapsed()))
                .max(Duration::from_millis(50))
        } else {
            policy.attempt_timeout
        };
        let outcome = match tokio::time::timeout(limit, op()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::transient(format!("no answer within {:.1} s", limit.as_secs_f64()))),
        };
        let failure = match outcome {
            Ok(value) => {
                if attempt > 1 {
                    tracing::info!(what, attempt, "S3 request succeeded after retries");
                }
                return Ok(value);
            }
            Err(f) if !f.transient => return Err(f),
            Err(f) => f,
        };
        let delay = backoff(policy.base_backoff, attempt - 1);
        let spent = start.elapsed();
        if spent + delay >= policy.budget {
            return Err(Failure { gave_up: Some((attempt, spent)), ..failure });
        }
        tracing::warn!(
            what,
            attempt,
            retry_in_ms = delay.as_millis() as u64,
            error = %failure.message,
            "transient S3 failure, retrying"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..20 {
            let d = backoff(BASE_BACKOFF, attempt);
            let step = BASE_BACKOFF.saturating_mul(1 << attempt.min(16)).min(MAX_BACKOFF);
            assert!(d >= step / 2 && d <= step, "{attempt}: {d:?}");
        }
    }

    #[tokio::test]
    async fn retries_transient_until_success_and_stops_on_permanent() {
        let policy = Policy {
            budget: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(5),
            strict: false,
            base_backoff: Duration::from_millis(1),
        };
        let calls = AtomicU32::new(0);
        let got = retry(policy, "t", || async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0..=4 => Err(Failure::transient("refused")),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(got.unwrap(), 7);
        assert_eq!(calls.load(Ordering::Relaxed), 6);

        calls.store(0, Ordering::Relaxed);
        let got: Result<(), _> = retry(policy, "t", || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(Failure::permanent("AccessDenied"))
        })
        .await;
        assert!(got.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn gives_up_at_the_budget() {
        let policy = Policy {
            budget: Duration::from_millis(300),
            attempt_timeout: Duration::from_millis(100),
            strict: true,
            base_backoff: Duration::from_millis(10),
        };
        let start = Instant::now();
        let got: Result<(), _> = retry(policy, "t", || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(())
        })
        .await;
        let f = got.unwrap_err();
        assert!(f.gave_up.is_some() && f.message.contains("no answer"), "{f:?}");
        assert!(start.elapsed() <= Duration::from_millis(600));
    }
}
