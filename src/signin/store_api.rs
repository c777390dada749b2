//! The calls the router makes to the Auth Durable Object, as JSON: one
//! [`StoreCall`] in, one [`StoreReply`] out. [`dispatch`] runs a call on
//! an [`AuthStore`] (the object does nothing else); [`AuthBackend`] is how
//! sign-in code reaches it (a DO stub in the Worker, the store directly in
//! tests).

use std::future::Future;

use serde::{Deserialize, Serialize};

use super::error::SignInError;
use super::store::{AuthStore, Identity, NewSession, Refusal, User};
use crate::storage::{SqlConn, StorageError};

/// Externally tagged on the wire (`{"refresh": {...}}`): internally tagged
/// enums cost far more wasm to deserialize.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreCall {
    SignIn {
        identity: Identity,
        new: NewSession,
        now_ms: i64,
    },
    Refresh {
        hash: String,
        new_hash: String,
        now_ms: i64,
    },
    Revoke {
        sid: String,
        now_ms: i64,
    },
    RevokeRefresh {
        hash: String,
        now_ms: i64,
    },
    Live {
        sid: String,
        now_ms: i64,
    },
    ConsumeState {
        id: String,
        expires_ms: i64,
        now_ms: i64,
    },
    EmailStart {
        email: String,
        code_hash: String,
        link_hash: String,
        redirect: String,
        expires_ms: i64,
        /// No new code within this long of the last one.
        resend_gap_ms: i64,
        now_ms: i64,
    },
    EmailCode {
        email: String,
        code_hash: String,
        now_ms: i64,
    },
    EmailLink {
        link_hash: String,
        now_ms: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreReply {
    Done,
    Session { user: User, sid: String },
    Live { live: bool },
    Revoked { sid: Option<String> },
    Email { email: String, redirect: String },
    Refused(Refusal),
}

/// Runs one call.
pub fn dispatch<C: SqlConn>(s: &AuthStore<C>, call: StoreCall) -> Result<StoreReply, StorageError> {
    use StoreCall::*;
    Ok(match call {
        SignIn {
            identity,
            new,
            now_ms,
        } => {
            let sid = new.sid.clone();
            StoreReply::Session {
                user: s.sign_in(&identity, &new, now_ms)?,
                sid,
            }
        }
        Refresh {
            hash,
            new_hash,
            now_ms,
        } => match s.refresh(&hash, &new_hash, now_ms)? {
            Ok((user, sid)) => StoreReply::Session { user, sid },
            Err(r) => StoreReply::Refused(r),
        },
        Revoke { sid, now_ms } => {
            s.revoke(&sid, now_ms, "logout")?;
            StoreReply::Revoked { sid: Some(sid) }
        }
        RevokeRefresh { hash, now_ms } => StoreReply::Revoked {
            sid: s.revoke_refresh(&hash, now_ms)?,
        },
        Live { sid, now_ms } => StoreReply::Live {
            live: s.live(&sid, now_ms)?,
        },
        ConsumeState {
            id,
            expires_ms,
            now_ms,
        } => {
            if s.consume_state(&id, expires_ms, now_ms)? {
                StoreReply::Done
            } else {
                StoreReply::Refused(Refusal::StateUsed)
            }
        }
        EmailStart {
            email,
            code_hash,
            link_hash,
            redirect,
            expires_ms,
            resend_gap_ms,
            now_ms,
        } => {
            let stored = s.email_start(
                &email,
                &code_hash,
                &link_hash,
                &redirect,
                expires_ms,
                resend_gap_ms,
                now_ms,
            )?;
            if stored {
                StoreReply::Done
            } else {
                StoreReply::Refused(Refusal::TooSoon)
            }
        }
        EmailCode {
            email,
            code_hash,
            now_ms,
        } => match s.email_code(&email, &code_hash, now_ms)? {
            Some(redirect) => StoreReply::Email { email, redirect },
            None => StoreReply::Refused(Refusal::CodeInvalid),
        },
        EmailLink { link_hash, now_ms } => match s.email_link(&link_hash, now_ms)? {
            Some((email, redirect)) => StoreReply::Email { email, redirect },
            None => StoreReply::Refused(Refusal::CodeInvalid),
        },
    })
}

/// Reaches the Auth store. Single-threaded like a Worker, so no `Send`.
pub trait AuthBackend {
    fn call(&self, call: StoreCall) -> impl Future<Output = Result<StoreReply, SignInError>>;
}

/// A reply of the wrong kind (a bug, or a store from another version).
pub fn unexpected(r: &StoreReply) -> SignInError {
    SignInError::Store(format!("unexpected reply {r:?}"))
}

/// [`AuthBackend`] over an [`AuthStore`] in this process, each call and
/// reply passed through JSON as they are between router and object.
pub struct LocalBackend<C: SqlConn>(pub AuthStore<C>);

impl<C: SqlConn> AuthBackend for LocalBackend<C> {
    async fn call(&self, call: StoreCall) -> Result<StoreReply, SignInError> {
        let wire = serde_json::to_string(&call).map_err(|e| SignInError::Store(e.to_string()))?;
        let call = serde_json::from_str(&wire).map_err(|e| SignInError::Store(e.to_string()))?;
        let reply = dispatch(&self.0, call).map_err(|e| SignInError::Store(e.to_string()))?;
        let wire = serde_json::to_string(&reply).map_err(|e| SignInError::Store(e.to_string()))?;
        serde_json::from_str(&wire).map_err(|e| SignInError::Store(e.to_string()))
    }
}
