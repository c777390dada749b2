//! [`HttpClient`] over the Workers `fetch()`: the only way this crate sends
//! HTTP from a Worker (the old blocking clients cannot run in wasm).

use std::time::Duration;

use futures_util::future::{select, Either};
use worker::{AbortController, Delay, Fetch, Headers, Request, RequestInit, RequestRedirect};

use crate::glue::body::{read_response_capped, BodyError};
use crate::http::{HttpClient, HttpError, HttpRequest, HttpResponse, MAX_RESPONSE_BYTES};

/// Sends through the runtime's `fetch()`, with a time limit and a body cap;
/// redirects come back as responses.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct WorkerFetch;

impl HttpClient for WorkerFetch {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let net = |e: worker::Error| HttpError::Network(e.to_string());
        let headers = Headers::new();
        for (name, value) in &req.headers {
            headers.set(name, value).map_err(net)?;
        }
        let mut init = RequestInit::new();
        init.with_method(match req.method {
            crate::http::Method::Get => worker::Method::Get,
            crate::http::Method::Post => worker::Method::Post,
        })
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
        if !req.body.is_empty() {
            let body = js_sys::Uint8Array::from(req.body.as_slice());
            init.with_body(Some(body.into()));
        }
        let request = Request::new_with_init(&req.url, &init).map_err(net)?;

        let abort = AbortController::default();
        let signal = abort.signal();
        let fetch = Fetch::Request(request);
        let sent = Box::pin(fetch.send_with_signal(&signal));
        let timer = Delay::from(Duration::from_millis(req.timeout_ms as u64));
        let mut resp = match select(sent, timer).await {
            Either::Left((r, _)) => r.map_err(net)?,
            Either::Right(_) => {
                abort.abort();
                return Err(HttpError::Timeout(req.timeout_ms));
            }
        };
        let body = match read_response_capped(&mut resp, MAX_RESPONSE_BYTES).await {
            Ok(body) => body,
            Err(BodyError::TooLarge { .. }) => return Err(HttpError::TooLarge),
            Err(BodyError::Unreadable(why)) => return Err(HttpError::Network(why)),
        };
        let headers = resp
            .headers()
            .entries()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        Ok(HttpResponse {
            status: resp.status_code(),
            headers,
            body,
        })
    }
}
