//! [`AuthBackend`] over the `Auth` Durable Object (one object, named
//! `auth`, holding users, sessions and revocations in its SQLite), with
//! the per-isolate session-check cache (`signin::revocation`) in front of
//! its `live` answers.

use std::cell::RefCell;

use worker::{Env, Headers, Method, Request, RequestInit};

use crate::signin::revocation::{Cache, Known};
use crate::signin::store::Refusal;
use crate::signin::store_api::{AuthBackend, StoreCall, StoreReply};
use crate::signin::SignInError;

/// The Durable Object namespace binding of the Auth class (wrangler.toml).
pub(crate) const AUTH_BINDING: &str = "AUTH";
/// The one Auth object's name.
const AUTH_OBJECT: &str = "auth";

thread_local! {
    // Per isolate, like any module state; a cache only (see revocation.rs).
    static CACHE: RefCell<Cache> = RefCell::new(Cache::new(0));
}

pub(crate) struct DoBackend<'a> {
    pub env: &'a Env,
    /// How long a revoked session's tokens can still be valid, ms.
    pub token_ttl_ms: i64,
    pub cache_ttl_ms: i64,
}

impl DoBackend<'_> {
    async fn send(&self, call: &StoreCall) -> Result<StoreReply, SignInError> {
        let fail = |e: worker::Error| SignInError::Store(e.to_string());
        let stub = self
            .env
            .durable_object(AUTH_BINDING)
            .and_then(|ns| ns.get_by_name(AUTH_OBJECT))
            .map_err(fail)?;
        let headers = Headers::new();
        headers
            .set("content-type", "application/json")
            .map_err(fail)?;
        // The object's host takes requests as the router routes them.
        crate::glue::target::write_route(&headers, AUTH_OBJECT, "call").map_err(fail)?;
        headers
            .set(
                crate::auth::AUTH_HEADER,
                &crate::auth::encode_context(&crate::policy::AuthContext::anonymous()),
            )
            .map_err(fail)?;
        let body = serde_json::to_string(call).map_err(|e| SignInError::Store(e.to_string()))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let req = Request::new_with_init("https://auth.internal/call", &init).map_err(fail)?;
        let mut resp = stub.fetch_with_request(req).await.map_err(fail)?;
        if resp.status_code() != 200 {
            return Err(SignInError::Store(format!(
                "the Auth object answered {}",
                resp.status_code()
            )));
        }
        resp.json().await.map_err(fail)
    }
}

impl DoBackend<'_> {
    /// [`StoreCall::Live`] without trusting a cached "live" (a cached
    /// "revoked" still answers): for checks that come at the cache's
    /// interval already. The answer is cached like any other.
    pub(crate) async fn live_now(&self, sid: &str, now_ms: i64) -> Result<bool, SignInError> {
        CACHE.with(|c| c.borrow_mut().set_ttl(self.cache_ttl_ms));
        if CACHE.with(|c| c.borrow().get(sid, now_ms)) == Known::Revoked {
            return Ok(false);
        }
        let live = match self
            .send(&StoreCall::Live {
                sid: sid.to_owned(),
                now_ms,
            })
            .await?
        {
            StoreReply::Live { live } => live,
            r => return Err(crate::signin::store_api::unexpected(&r)),
        };
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            if live {
                c.live(sid, now_ms);
            } else {
                c.revoked(sid, now_ms + self.token_ttl_ms + 60_000);
            }
        });
        Ok(live)
    }
}

impl AuthBackend for DoBackend<'_> {
    async fn call(&self, call: StoreCall) -> Result<StoreReply, SignInError> {
        CACHE.with(|c| c.borrow_mut().set_ttl(self.cache_ttl_ms));
        if let StoreCall::Live { sid, now_ms } = &call {
            match CACHE.with(|c| c.borrow().get(sid, *now_ms)) {
                Known::Live => return Ok(StoreReply::Live { live: true }),
                Known::Revoked => return Ok(StoreReply::Live { live: false }),
                Known::Ask => {}
            }
        }
        let reply = self.send(&call).await?;
        let now = match &call {
            StoreCall::Live { now_ms, .. }
            | StoreCall::Revoke { now_ms, .. }
            | StoreCall::RevokeRefresh { now_ms, .. }
            | StoreCall::Refresh { now_ms, .. } => *now_ms,
            _ => 0,
        };
        let until = now + self.token_ttl_ms + 60_000;
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            match (&call, &reply) {
                (StoreCall::Live { sid, .. }, StoreReply::Live { live: true }) => c.live(sid, now),
                (StoreCall::Live { sid, .. }, StoreReply::Live { live: false }) => {
                    c.revoked(sid, until)
                }
                (_, StoreReply::Revoked { sid: Some(sid) }) => c.revoked(sid, until),
                (_, StoreReply::Refused(Refusal::RefreshReused { sid })) => c.revoked(sid, until),
                _ => {}
            }
        });
        Ok(reply)
    }
}
