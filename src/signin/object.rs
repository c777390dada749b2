//! The sign-in store as a hosted object (`Auth`): one instance, named
//! `auth`, holding users, identities, sessions, hashed refresh tokens,
//! used OAuth states and pending email codes. The router is its only
//! client; each request is one JSON [`StoreCall`], answered with one
//! [`StoreReply`]. Every call is synchronous SQL with no await inside, so
//! it commits as a unit and calls never interleave (a refresh-token
//! rotation cannot race another use of the same token).

use super::store::AuthStore;
use super::store_api::{dispatch, StoreCall, StoreReply};
use crate::api_error::ApiError;
use crate::host::{Action, NoConn, NoMsg, Object, Open, OpenError, Request, Response};
use crate::storage::SqlConn;

/// The Auth object.
pub struct AuthObject<C: SqlConn> {
    store: AuthStore<C>,
}

impl<C: SqlConn> Object<C> for AuthObject<C> {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        init: Open<'_, C>,
        _conns: Vec<(String, NoConn)>,
    ) -> Result<(Self, Vec<Action<NoMsg, NoConn>>), OpenError> {
        let store = AuthStore::open(init.sql)?;
        Ok((AuthObject { store }, Vec::new()))
    }

    async fn on_request(
        &mut self,
        req: Request,
        _now_ms: i64,
    ) -> (Response, Vec<Action<NoMsg, NoConn>>) {
        let call: StoreCall = match serde_json::from_slice(&req.body) {
            Ok(c) => c,
            Err(e) => {
                let e = ApiError::bad_request("BAD_REQUEST", format!("not a store call: {e}"));
                return (e.into(), Vec::new());
            }
        };
        let resp = match dispatch(&self.store, call) {
            Ok(reply) => match serde_json::to_value::<StoreReply>(reply) {
                Ok(v) => Response::ok(v),
                Err(e) => ApiError::internal(format!("encoding the reply: {e}")).into(),
            },
            Err(e) => ApiError::internal(format!("the auth store failed: {e}")).into(),
        };
        (resp, Vec::new())
    }
}
