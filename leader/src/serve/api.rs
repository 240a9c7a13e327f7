//! The HTTP API: routes, request parsing and the one error shape.
//!
//! | method and path                 | answer                                              |
//! |---------------------------------|-----------------------------------------------------|
//! | `POST /v1/jobs`                 | 202 + job (body: the block input); 400, 413, 429     |
//! | `GET /v1/jobs?limit=&state=`    | 200 `{"jobs": [...]}`, newest first                   |
//! | `GET /v1/jobs/{id}`             | 200 job; 404                                        |
//! | `GET /v1/jobs/{id}/proof`       | 200 proof file bytes; 409 while not proven; 404     |
//! | `GET /v1/jobs/{id}/timeline.svg`| 200 SVG (proven or failed); 409 before; 404         |
//! | `DELETE /v1/jobs/{id}`          | 200 cancelled job (queued/running); 204 deleted (finished) |
//! | `GET /metrics`                  | Prometheus text exposition ([`proofline_http::metrics_router`]) |
//! | `GET /openapi.json`, `/livez`, `/readyz` | the document; probes                       |
//!
//! Every error is `{"error": {"code": "...", "message": "..."}}` with the codes of
//! [`ErrorCode`]; `/v1/...` and `/metrics` need the bearer token when one is set
//! ([`super::auth`]).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::BodyExt;

use super::auth::Token;
use super::service::{Service, ServiceError, now_ms};
use super::state::JobState;
use super::views;

/// Request bodies read and planned at once: memory stays under this many times
/// `--max-input-mib` however many clients upload (the others wait their turn).
pub const CONCURRENT_UPLOADS: usize = 4;

/// The service and the API's settings, shared by the handlers.
pub struct Api {
    pub service: Arc<Service>,
    pub token: Option<Token>,
    pub max_input_bytes: u64,
    /// [`CONCURRENT_UPLOADS`] permits.
    pub uploads: tokio::sync::Semaphore,
}

/// The stable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BadInput,
    Unauthorized,
    NotFound,
    MethodNotAllowed,
    NotProven,
    TooLarge,
    QueueFull,
    ShuttingDown,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadInput => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotProven => StatusCode::CONFLICT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueueFull => StatusCode::TOO_MANY_REQUESTS,
            Self::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadInput => "bad_input",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotProven => "not_proven",
            Self::TooLarge => "too_large",
            Self::QueueFull => "queue_full",
            Self::ShuttingDown => "shutting_down",
            Self::Internal => "internal",
        }
    }

    pub const ALL: [ErrorCode; 9] = [
        Self::BadInput,
        Self::Unauthorized,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::NotProven,
        Self::TooLarge,
        Self::QueueFull,
        Self::ShuttingDown,
        Self::Internal,
    ];
}

/// An error answer: its code, message and extra headers.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), headers: Vec::new() }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let message = e.to_string();
        match e {
            ServiceError::BadInput(m) => Self::new(ErrorCode::BadInput, m),
            ServiceError::QueueFull { retry_after, .. } => {
                let mut err = Self::new(ErrorCode::QueueFull, message);
                err.headers.push((header::RETRY_AFTER, HeaderValue::from(retry_after)));
                err
            }
            ServiceError::NotFound(_) => Self::new(ErrorCode::NotFound, message),
            ServiceError::ShuttingDown => Self::new(ErrorCode::ShuttingDown, message),
            ServiceError::Internal(m) => {
                tracing::error!("internal error: {m}");
                Self::new(ErrorCode::Internal, m)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}});
        let mut response = json_response(self.code.status(), &body);
        response.headers_mut().extend(self.headers);
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let mut bytes = serde_json::to_vec(body).expect("JSON serializes");
    bytes.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

type Shared = Arc<Api>;

pub fn router(api: Shared) -> Router {
    let protected = Router::new()
        .route("/v1/jobs", get(list_jobs).post(submit))
        .route("/v1/jobs/{id}", get(get_job).delete(delete_job))
        .route("/v1/jobs/{id}/proof", get(get_proof))
        .route("/v1/jobs/{id}/timeline.svg", get(get_timeline))
        .route_service("/metrics", proofline_http::metrics_router())
        .route_layer(middleware::from_fn_with_state(api.clone(), authenticate));
    Router::new()
        .merge(protected)
        .route("/openapi.json", get(|| async { json_response(StatusCode::OK, &super::openapi::document()) }))
        .route(
            "/livez",
            get(|| async { json_response(StatusCode::OK, &serde_json::json!({"status": "live"})) }),
        )
        .route("/readyz", get(readyz))
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such endpoint; see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(ErrorCode::MethodNotAllowed, "method not allowed here; see /openapi.json")
        })
        .with_state(api)
}

async fn authenticate(State(api): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &api.token {
        let presented = request.headers().get(header::AUTHORIZATION).map(HeaderValue::as_bytes);
        if !token.accepts(presented) {
            return ApiError::new(
                ErrorCode::Unauthorized,
                "missing or wrong bearer token (Authorization: Bearer TOKEN)",
            )
            .into_response();
        }
    }
    next.run(request).await
}

async fn readyz(State(api): State<Shared>) -> Response {
    if api.service.ready.load(Ordering::SeqCst) && !api.service.is_stopping() {
        json_response(StatusCode::OK, &serde_json::json!({"status": "ready"}))
    } else {
        ApiError::new(ErrorCode::ShuttingDown, "not ready (starting, or stopping)").into_response()
    }
}

/// The client of a submission: `X-Proofline-Client`, else `?client=`, else `default`.
pub fn client_of(header: Option<&[u8]>, query: Option<&str>) -> Result<String, String> {
    let from_query = query_param(query, "client");
    let name = match (header, from_query) {
        (Some(h), _) => std::str::from_utf8(h).map_err(|_| "X-Proofline-Client is not text".to_owned())?,
        (None, Some(q)) => q,
        (None, None) => return Ok("default".into()),
    };
    if crate::cli::is_client_name(name) {
        Ok(name.to_owned())
    } else {
        Err(format!("{name:?} is not a client name: 1 to 64 characters of A-Z a-z 0-9 . _ -"))
    }
}

/// The value of `key` in a query string (no percent-decoding: the values taken here
/// are plain names and numbers; anything else is refused by their parsers).
fn query_param<'a>(query: Option<&'a str>, key: &str) -> Option<&'a str> {
    query?.split('&').filter_map(|pair| pair.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `limit` (1 to 1000, default 100) and `state` of `GET /v1/jobs`.
pub fn list_query(query: Option<&str>) -> Result<(usize, Option<JobState>), String> {
    let limit = match query_param(query, "limit") {
        None => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=1000) => n,
            _ => return Err(format!("limit {text:?}: expected a whole number from 1 to 1000")),
        },
    };
    let state = match query_param(query, "state") {
        None => None,
        Some(text) => Some(JobState::parse(text).ok_or_else(|| {
            format!("state {text:?}: expected queued, running, proven, failed or cancelled")
        })?),
    };
    Ok((limit, state))
}

/// Bad input when the declared length is over the limit (refused before reading).
pub fn check_declared_length(headers: &HeaderMap, limit: u64, mib: u64) -> Result<(), ApiError> {
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(too_large(mib)),
        _ => Ok(()),
    }
}

fn too_large(mib: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!(
            "the request body is larger than {mib} MiB, the most a block with its witness may be \
             (the service's --max-input-mib)"
        ),
    )
}

async fn submit(State(api): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let header = parts.headers.get("x-proofline-client").map(HeaderValue::as_bytes);
    let client = client_of(header, parts.uri.query()).map_err(|m| ApiError::new(ErrorCode::BadInput, m))?;
    let mib = api.max_input_bytes >> 20;
    check_declared_length(&parts.headers, api.max_input_bytes, mib)?;
    api.service.check_room()?;
    let _upload =
        api.uploads.acquire().await.map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    let input = read_limited(body, api.max_input_bytes).await.map_err(|e| match e {
        BodyError::TooLarge => too_large(mib),
        BodyError::Read(m) => ApiError::new(ErrorCode::BadInput, format!("reading the request body: {m}")),
    })?;
    let record = api.service.submit(input, client).await?;
    let snapshot = super::service::Snapshot { record, progress: None };
    let mut response = json_response(StatusCode::ACCEPTED, &views::job(&snapshot, now_ms()));
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", snapshot.record.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// A request body that sends nothing for this long is refused (400), so that a stalled
/// upload cannot hold one of the [`CONCURRENT_UPLOADS`] slots for ever.
pub const BODY_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The whole body, reading at most `limit` bytes.
async fn read_limited(body: Body, limit: u64) -> Result<Vec<u8>, BodyError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut body = http_body_util::Limited::new(body, limit);
    let mut data = Vec::new();
    loop {
        let frame = match tokio::time::timeout(BODY_IDLE_TIMEOUT, body.frame()).await {
            Err(_) => {
                let idle = BODY_IDLE_TIMEOUT.as_secs();
                return Err(BodyError::Read(format!(
                    "nothing arrived for {idle} s; send the body without pauses"
                )));
            }
            Ok(None) => return Ok(data),
            Ok(Some(Err(e))) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Err(BodyError::TooLarge);
            }
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(chunk) = frame.into_data() {
            data.extend_from_slice(&chunk);
        }
    }
}

async fn list_jobs(State(api): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let (limit, state) =
        list_query(request.uri().query()).map_err(|m| ApiError::new(ErrorCode::BadInput, m))?;
    let now = now_ms();
    let jobs: Vec<_> = api.service.list(limit, state).iter().map(|s| views::job(s, now)).collect();
    Ok(json_response(StatusCode::OK, &serde_json::json!({ "jobs": jobs })))
}

type JobPath = Result<Path<String>, axum::extract::rejection::PathRejection>;

fn job_id(path: JobPath) -> Result<String, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::new(ErrorCode::NotFound, format!("no such job: {e}")))?;
    Ok(id)
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorCode::NotFound, format!("no job {id:?} (never submitted, deleted, or expired)"))
}

async fn get_job(State(api): State<Shared>, path: JobPath) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let snapshot = api.service.get(&id).ok_or_else(|| not_found(&id))?;
    Ok(json_response(StatusCode::OK, &views::job(&snapshot, now_ms())))
}

async fn delete_job(State(api): State<Shared>, path: JobPath) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    if api.service.get(&id).is_none() {
        return Err(not_found(&id));
    }
    match api.service.cancel_or_delete(&id).await? {
        Some(record) => {
            let snapshot = super::service::Snapshot { record, progress: None };
            Ok(json_response(StatusCode::OK, &views::job(&snapshot, now_ms())))
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// The record of a proven job, else 404 / 409.
fn proven(api: &Api, id: &str) -> Result<super::registry::JobRecord, ApiError> {
    let record = api.service.get(id).ok_or_else(|| not_found(id))?.record;
    if record.state != JobState::Proven {
        return Err(ApiError::new(
            ErrorCode::NotProven,
            format!("job {id} is {}, not proven: there is no proof (yet)", record.state.as_str()),
        ));
    }
    Ok(record)
}

async fn get_proof(State(api): State<Shared>, path: JobPath) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    let record = proven(&api, &id)?;
    let proof = record.proof.ok_or_else(|| ApiError::new(ErrorCode::Internal, "proven without a proof"))?;
    let bytes = super::registry::blocking(&api.service.store, move |s| s.get(&proof))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("reading the proof: {e}")))?;
    let file_name =
        format!("attachment; filename=\"{}.proof\"", if record.name.is_empty() { &id } else { &record.name });
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&file_name) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

async fn get_timeline(State(api): State<Shared>, path: JobPath) -> Result<Response, ApiError> {
    let id = job_id(path)?;
    // Proven and failed jobs have one (a failed job's shows where its time went).
    let record = api.service.get(&id).ok_or_else(|| not_found(&id))?.record;
    let timeline = record.timeline.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotProven,
            format!("job {id} is {}: no timeline (yet)", record.state.as_str()),
        )
    })?;
    let bytes = super::registry::blocking(&api.service.store, move |s| s.get(&timeline))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("reading the timeline: {e}")))?;
    let timeline: proofline_runtime::leader::timeline::Timeline = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("reading the timeline: {e}")))?;
    let title = if record.name.is_empty() { id.clone() } else { format!("{} ({id})", record.name) };
    let svg = tokio::task::spawn_blocking(move || crate::timeline::render_svg(&timeline, &title))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("drawing the timeline: {e}")))?
        .map_err(|f| ApiError::new(ErrorCode::Internal, format!("drawing the timeline: {}", f.message)))?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_come_from_the_header_then_the_query() {
        assert_eq!(client_of(None, None).unwrap(), "default");
        assert_eq!(client_of(Some(b"seq-1"), Some("client=other")).unwrap(), "seq-1");
        assert_eq!(client_of(None, Some("limit=3&client=rollup.a")).unwrap(), "rollup.a");
        assert!(client_of(Some(b"has space"), None).is_err());
        assert!(client_of(None, Some("client=")).is_err());
        assert!(client_of(Some(&[0xff]), None).is_err());
    }

    #[test]
    fn list_queries_are_bounded() {
        assert_eq!(list_query(None).unwrap(), (100, None));
        assert_eq!(list_query(Some("limit=5&state=proven")).unwrap(), (5, Some(JobState::Proven)));
        for bad in ["limit=0", "limit=1001", "limit=-1", "limit=x", "state=done"] {
            assert!(list_query(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_error_code_has_its_own_name_and_a_client_or_server_status() {
        let names: std::collections::HashSet<_> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let status = code.status();
            assert!(status.is_client_error() || status.is_server_error(), "{code:?}");
        }
        assert_eq!(ErrorCode::QueueFull.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(ErrorCode::TooLarge.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_reading() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(1025u64));
        assert_eq!(check_declared_length(&headers, 1024, 0).unwrap_err().code, ErrorCode::TooLarge);
        assert!(check_declared_length(&headers, 1025, 0).is_ok());
        assert!(check_declared_length(&HeaderMap::new(), 1, 0).is_ok());
    }
}
