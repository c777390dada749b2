//! The Auth Durable Object: one instance (`auth`) holding users, their
//! provider identities, sessions, hashed refresh tokens, used OAuth states
//! and pending email codes in its SQLite storage. The router is its only
//! client (Durable Objects have no public URL); each request is one JSON
//! `StoreCall`, answered with one `StoreReply` by
//! `signin::store_api::dispatch`. Nothing is decided here.
//!
//! Every call is synchronous SQL with no await inside, so it commits as a
//! unit and calls never interleave (a refresh-token rotation cannot race
//! another use of the same token).

use std::cell::RefCell;

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::do_sql::DoSql;
use crate::signin::store::AuthStore;
use crate::signin::store_api::{dispatch, StoreCall};

#[durable_object]
pub struct Auth {
    state: State,
    /// Opened (tables created) on the first call after construction.
    store: RefCell<Option<AuthStore<DoSql>>>,
}

impl DurableObject for Auth {
    fn new(state: State, _env: Env) -> Self {
        Self {
            state,
            store: RefCell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let call: StoreCall = match req.json().await {
            Ok(c) => c,
            Err(e) => return Response::error(format!("not a store call: {e}"), 400),
        };
        let mut slot = self.store.borrow_mut();
        if slot.is_none() {
            match AuthStore::open(DoSql(self.state.storage().sql())) {
                Ok(s) => *slot = Some(s),
                Err(e) => {
                    worker::console_error!("auth store: opening: {e}");
                    return Response::error("the auth store does not open", 500);
                }
            }
        }
        let store = slot.as_ref().expect("opened above");
        match dispatch(store, call) {
            Ok(reply) => Response::from_json(&reply),
            Err(e) => {
                worker::console_error!("auth store: {e}");
                Response::error("the auth store failed", 500)
            }
        }
    }
}
