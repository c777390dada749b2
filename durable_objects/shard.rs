//! The Shard Durable Object: one per shard name, owning that shard's rows
//! in its SQLite storage and its clients' WebSockets (hibernation API).
//!
//! Until the live-query protocol lands, a text message is broadcast to every
//! socket of the shard with the next seq.

use std::cell::Cell;

use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{
    durable_object, DurableObject, Env, Method, Request, Response, Result, State, WebSocket,
    WebSocketIncomingMessage, WebSocketPair,
};

use super::do_sql::DoSql;
use crate::api_error::ApiError;
use crate::glue::respond;
use crate::route::{self, Route};
use crate::shard::meta::{self, Meta};

const NEXT_CONN: &str = "next_conn";
const SEQ: &str = "seq";

/// Per-socket state that must survive hibernation: kept in the socket's
/// attachment (at most 16 KiB), read back on each event.
#[derive(Serialize, Deserialize)]
struct Attachment {
    conn: String,
}

#[durable_object]
pub struct Shard {
    state: State,
    /// Times this object was constructed, including this one (from storage).
    wakes: Cell<i64>,
}

impl Shard {
    fn sql(&self) -> DoSql {
        DoSql(self.state.storage().sql())
    }

    fn storage_failed(e: impl std::fmt::Display) -> worker::Error {
        worker::Error::RustError(format!("shard storage: {e}"))
    }

    async fn accept_socket(&self, req: &Request, shard: &str) -> Result<Response> {
        let upgrade = req.headers().get("Upgrade")?.unwrap_or_default();
        if !upgrade.eq_ignore_ascii_case("websocket") {
            return respond::error(&ApiError::new(
                426,
                "UPGRADE_REQUIRED",
                "this endpoint takes a WebSocket upgrade",
            ));
        }
        let sql = self.sql();
        let meta = Meta::open(&sql).map_err(Self::storage_failed)?;
        meta.set_text(meta::SHARD_NAME, shard)
            .map_err(Self::storage_failed)?;
        // Connection ids come from storage so they stay unique across wakes.
        let conn = format!("c{}", meta.add(NEXT_CONN, 1).map_err(Self::storage_failed)?);
        let seq = meta.int(SEQ).map_err(Self::storage_failed)?;

        let pair = WebSocketPair::new()?;
        self.state.accept_web_socket(&pair.server);
        pair.server
            .serialize_attachment(Attachment { conn: conn.clone() })?;
        pair.server.send_with_str(
            json!({ "type": "welcome", "shard": shard, "conn": conn, "seq": seq }).to_string(),
        )?;
        Response::from_websocket(pair.client)
    }

    fn stats(&self, shard: &str) -> Result<Response> {
        let sql = self.sql();
        let meta = Meta::open(&sql).map_err(Self::storage_failed)?;
        respond::json(
            200,
            &json!({
                "shard": shard,
                "connections": self.state.get_websockets().len(),
                "wakes": self.wakes.get(),
                "seq": meta.int(SEQ).map_err(Self::storage_failed)?,
                "storage_bytes": sql.0.database_size(),
            }),
        )
    }
}

impl DurableObject for Shard {
    fn new(state: State, _env: Env) -> Self {
        // SQL storage is synchronous, so the wake is counted before any event.
        let wakes = Meta::open(&DoSql(state.storage().sql()))
            .and_then(|m| m.add(meta::WAKES, 1))
            .unwrap_or_else(|e| {
                worker::console_error!("shard: counting the wake failed: {e}");
                0
            });
        Self {
            state,
            wakes: Cell::new(wakes),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let (shard, rest) = match route::parse(&req.path()) {
            Ok(Route::Shard { shard, rest }) => (shard, rest),
            Ok(_) => return respond::error(&ApiError::not_found("not a shard route")),
            Err(e) => return respond::error(&e),
        };
        match (req.method(), rest.as_str()) {
            (Method::Get, "ws") => self.accept_socket(&req, &shard).await,
            (Method::Get, "stats") => self.stats(&shard),
            (_, "ws" | "stats") => respond::error(&ApiError::method_not_allowed(format!(
                "use GET /v1/shards/{shard}/{rest}"
            ))),
            _ => respond::error(&ApiError::not_found(format!(
                "no route /v1/shards/{shard}/{rest}"
            ))),
        }
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        let WebSocketIncomingMessage::String(text) = message else {
            return ws.send_with_str(
                json!({"type":"err","code":"BAD_FRAME","message":"text frames only"}).to_string(),
            );
        };
        let from = ws.deserialize_attachment::<Attachment>()?.map(|a| a.conn);
        let seq = Meta::open(&self.sql())
            .and_then(|m| m.add(SEQ, 1))
            .map_err(Self::storage_failed)?;
        let frame = json!({ "type": "echo", "from": from, "seq": seq, "data": text }).to_string();
        for socket in self.state.get_websockets() {
            // One closing socket must not stop the others from getting the frame.
            if let Err(e) = socket.send_with_str(&frame) {
                worker::console_warn!("shard: send failed: {e}");
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        _reason: String,
        _clean: bool,
    ) -> Result<()> {
        // Reply to the client's close; 1005/1006 are reserved and cannot be sent.
        let code = if code == 1005 || code == 1006 {
            1000
        } else {
            code as u16
        };
        let _ = ws.close(Some(code), Some("closing"));
        Ok(())
    }

    async fn websocket_error(&self, _ws: WebSocket, error: worker::Error) -> Result<()> {
        worker::console_warn!("shard: socket error: {error}");
        Ok(())
    }

    async fn alarm(&self) -> Result<Response> {
        Response::ok("")
    }
}
