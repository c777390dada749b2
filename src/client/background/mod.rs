//! Background work over HTTP (docs/jobs.md, docs/workflows.md): [`Jobs`],
//! [`Workflows`] and [`Scheduler`], Pylon's `JobOps`, `WorkflowOps` and
//! `SchedulerOps`. Each call is one request to `/v1/jobs…`,
//! `/v1/workflows…` or `/v1/crons…` with `Authorization: Bearer <token>`;
//! a refusal is a [`RequestError`] with the server's code.
//!
//! They send through any [`HttpClient`]; `new` uses [`PlainHttp`]
//! (`http://` only, for `wrangler dev`, tests and tools). Against a
//! deployed app (`https://`), pass an `HttpClient` of your own to
//! `with_http`.
//!
//! ```no_run
//! use pylon_workers::client::background::{EnqueueOptions, Jobs};
//! use serde_json::json;
//!
//! # async fn demo(admin_token: String) -> Result<(), pylon_workers::client::background::RequestError> {
//! let jobs = Jobs::new("http://127.0.0.1:8787").token(admin_token);
//! let queued = jobs
//!     .enqueue("moveCard", json!({"cardId": "k1", "column": "done", "position": 0}),
//!         EnqueueOptions::default().shard("board-1").delay_ms(3000))
//!     .await?;
//! let job = jobs.get(&queued.id).await?; // status, attempts, error, result, …
//! # Ok(()) }
//! ```

mod channels;
mod jobs;
mod rooms;
mod scheduler;
mod workflows;

pub use channels::{
    ChannelEvent, ChannelList, ChannelMessage, ChannelSocket, ChannelSocketError, Channels,
    History, ListedChannel, Published,
};

pub use jobs::{EnqueueOptions, Enqueued, Job, JobFilter, JobStats, Jobs};
pub use rooms::{ListedRoom, RoomInfo, RoomMember, RoomPage, Rooms};
pub use scheduler::{CronEntry, CronRun, CronRuns, Scheduler};
pub use workflows::{StartOptions, StepRecord, WorkflowFilter, WorkflowState, Workflows};

pub use crate::jobs::JobStatus;
pub use crate::workflows::{Status as WorkflowStatus, WorkflowSummary};

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::http::PlainHttp;
use crate::http::{percent_encode, HttpClient, HttpError, HttpRequest};

/// A refusal's, a failed job's or a failed step's error.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ErrorInfo {
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// Why a call to the background API failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The server refused: its `{"error": {code, message}}` with the HTTP
    /// status; `HTTP_<status>` as the code for an error without that body.
    #[error("{code}: {message} (HTTP {status})")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// No answer: the connection failed or timed out, or the answer was
    /// too large or not HTTP.
    #[error("no answer from the server")]
    Unavailable(#[source] HttpError),
    /// A success whose body is not the route's JSON.
    #[error("the answer (HTTP {status}) is not what the route returns: {message}")]
    BadResponse { status: u16, message: String },
}

impl RequestError {
    /// The server's code for a refusal (`FORBIDDEN`, `JOB_NOT_RETRYABLE`,
    /// `WORKFLOW_FINISHED`, …), else `UNAVAILABLE` or `BAD_RESPONSE`, as
    /// the TypeScript client's `PylonError.code`.
    pub fn code(&self) -> &str {
        match self {
            RequestError::Refused { code, .. } => code,
            RequestError::Unavailable(_) => "UNAVAILABLE",
            RequestError::BadResponse { .. } => "BAD_RESPONSE",
        }
    }

    /// The answer's HTTP status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            RequestError::Refused { status, .. } | RequestError::BadResponse { status, .. } => {
                Some(*status)
            }
            RequestError::Unavailable(_) => None,
        }
    }
}

/// What the three APIs share: where the app is, the token, the client.
#[derive(Clone, Debug)]
struct Api<H> {
    /// `http(s)://host[:port]`, without a trailing slash.
    origin: String,
    token: Option<String>,
    http: H,
}

impl Api<PlainHttp> {
    fn plain(base_url: impl Into<String>) -> Self {
        Api::with_http(base_url, PlainHttp)
    }
}

impl<H: HttpClient> Api<H> {
    /// `ws(s)://` is taken as `http(s)://`, so a client's socket URL works.
    fn with_http(base_url: impl Into<String>, http: H) -> Self {
        let base: String = base_url.into();
        let base = base.trim_end_matches('/');
        let origin = match base.get(..5) {
            Some(s) if s.eq_ignore_ascii_case("ws://") => format!("http://{}", &base[5..]),
            _ => match base.get(..6) {
                Some(s) if s.eq_ignore_ascii_case("wss://") => format!("https://{}", &base[6..]),
                _ => base.to_owned(),
            },
        };
        Api {
            origin,
            token: None,
            http,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, RequestError> {
        self.send(HttpRequest::get(format!("{}{path}", self.origin)))
            .await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, RequestError> {
        self.send(HttpRequest::post_json(
            format!("{}{path}", self.origin),
            body,
        ))
        .await
    }

    async fn send<T: DeserializeOwned>(&self, mut req: HttpRequest) -> Result<T, RequestError> {
        if let Some(t) = self.token.as_deref().filter(|t| !t.is_empty()) {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let resp = self
            .http
            .send(req)
            .await
            .map_err(RequestError::Unavailable)?;
        let status = resp.status;
        if !resp.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                error: ErrorInfo,
            }
            return Err(match serde_json::from_slice::<Refusal>(&resp.body) {
                Ok(r) => RequestError::Refused {
                    status,
                    code: r.error.code,
                    message: r.error.message,
                },
                Err(_) => RequestError::Refused {
                    status,
                    code: format!("HTTP_{status}"),
                    message: String::from_utf8_lossy(&resp.body)
                        .chars()
                        .take(200)
                        .collect(),
                },
            });
        }
        serde_json::from_slice(&resp.body).map_err(|e| RequestError::BadResponse {
            status,
            message: e.to_string(),
        })
    }
}

/// A path segment: the router matches ids and names as written (it
/// decodes nothing), and `:` is both legal in a segment and common in ids.
fn segment(s: &str) -> String {
    percent_encode(s).replace("%3A", ":")
}

/// `?k=v&…` of the fields given.
fn query(fields: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", percent_encode(v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The three APIs' shared constructors and token setters.
macro_rules! api_handle {
    ($t:ident) => {
        impl $t<$crate::client::PlainHttp> {
            /// Over [`PlainHttp`](crate::client::PlainHttp): `base_url` is
            /// `http://host:port` (a `ws://` URL is taken as `http://`).
            pub fn new(base_url: impl Into<String>) -> Self {
                $t {
                    api: super::Api::plain(base_url),
                }
            }
        }

        impl<H: $crate::http::HttpClient> $t<H> {
            /// Over an HTTP client of your own (e.g. one that speaks TLS).
            pub fn with_http(base_url: impl Into<String>, http: H) -> Self {
                $t {
                    api: super::Api::with_http(base_url, http),
                }
            }

            /// Sent as `Authorization: Bearer <token>`.
            pub fn token(mut self, token: impl Into<String>) -> Self {
                self.api.token = Some(token.into());
                self
            }

            /// Replaces the token (e.g. after renewing it); `None` sends none.
            pub fn set_token(&mut self, token: Option<String>) {
                self.api.token = token;
            }
        }
    };
}
use api_handle;

#[cfg(test)]
mod tests;
