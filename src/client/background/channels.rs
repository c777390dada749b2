//! [`Channels`]: Pylon's `PubSubOps` (docs/pubsub.md): publish, history
//! and the channel list over HTTP, and [`ChannelSocket`], one subscriber
//! socket. The socket does not reconnect by itself: after a drop, open a
//! new one with `after` set to the id of the last message handled, and
//! the channel replays what is kept after it.
//!
//! ```no_run
//! use pylon_workers::client::background::{ChannelEvent, Channels};
//! # async fn demo(token: String) -> Result<(), Box<dyn std::error::Error>> {
//! let ch = Channels::new("http://127.0.0.1:8787").token(token);
//! let published = ch.publish("chat:lobby", serde_json::json!({"text": "hi"})).await?;
//! let mut socket = ch.subscribe("chat:lobby", Some(published.id - 1)).await?;
//! while let Some(event) = socket.next().await? {
//!     if let ChannelEvent::Message { id, data, .. } = event { println!("{id}: {data}"); }
//! }
//! # Ok(()) }
//! ```

use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{query, segment, Api, RequestError};
use crate::http::HttpClient;

#[derive(Clone, Debug)]
pub struct Channels<H = crate::client::PlainHttp> {
    api: Api<H>,
}

super::api_handle!(Channels);

/// A publish's answer.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Published {
    pub id: i64,
    pub at: i64,
}

/// A kept message.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChannelMessage {
    pub id: i64,
    pub at: i64,
    pub data: Value,
}

/// `GET …/history`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    pub channel: String,
    pub last_id: i64,
    pub messages: Vec<ChannelMessage>,
}

/// A page of `GET /v1/channels`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ChannelList {
    pub channels: Vec<ListedChannel>,
    /// The `after` of the next page; `None` on the last.
    pub next: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListedChannel {
    pub name: String,
    pub created_at: i64,
}

impl<H: HttpClient> Channels<H> {
    /// `POST /v1/channels/{channel}/publish`.
    pub async fn publish(&self, channel: &str, data: Value) -> Result<Published, RequestError> {
        let path = format!("/v1/channels/{}/publish", segment(channel));
        self.api.post(&path, &json!({ "data": data })).await
    }

    /// `GET /v1/channels/{channel}/history?after&limit`.
    pub async fn history(
        &self,
        channel: &str,
        after: Option<i64>,
        limit: Option<u32>,
    ) -> Result<History, RequestError> {
        let q = query(&[
            ("after", after.map(|a| a.to_string())),
            ("limit", limit.map(|l| l.to_string())),
        ]);
        self.api
            .get(&format!("/v1/channels/{}/history{q}", segment(channel)))
            .await
    }

    /// `GET /v1/channels?after&limit`: what the caller may subscribe to.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ChannelList, RequestError> {
        let q = query(&[
            ("after", after.map(str::to_owned)),
            ("limit", limit.map(|l| l.to_string())),
        ]);
        self.api.get(&format!("/v1/channels{q}")).await
    }

    /// Opens a subscriber socket (`after`: replay the kept messages after
    /// that id first). The token goes in the subprotocol.
    pub async fn subscribe(
        &self,
        channel: &str,
        after: Option<i64>,
    ) -> Result<ChannelSocket, ChannelSocketError> {
        let ws_origin = match self.api.origin.split_once("://") {
            Some((s, rest)) if s.eq_ignore_ascii_case("https") => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => self.api.origin.clone(),
        };
        let q = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let url = format!("{ws_origin}/v1/channels/{}/ws{q}", segment(channel));
        let mut req = url.into_client_request().map_err(socket_error)?;
        let protocols = match self.api.token.as_deref().filter(|t| !t.is_empty()) {
            Some(t) => format!("pylon.v1.json, bearer.{t}"),
            None => "pylon.v1.json".to_owned(),
        };
        let value = protocols
            .parse()
            .map_err(|_| ChannelSocketError::Refused { status: 0 })?;
        req.headers_mut().insert("Sec-WebSocket-Protocol", value);
        match tokio_tungstenite::connect_async(req).await {
            Ok((ws, _)) => Ok(ChannelSocket { ws }),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                Err(ChannelSocketError::Refused {
                    status: resp.status().as_u16(),
                })
            }
            Err(e) => Err(socket_error(e)),
        }
    }
}

/// What a subscriber socket receives (docs/pubsub.md, "Socket protocol").
#[derive(Clone, Debug, PartialEq)]
pub enum ChannelEvent {
    Message {
        id: i64,
        at: i64,
        data: Value,
    },
    /// After the replay: live messages follow. `gap`: messages after the
    /// `after` given were dropped by retention meanwhile.
    Ready {
        last_id: i64,
        gap: bool,
    },
    Error {
        code: String,
        message: String,
    },
}

/// Why a subscriber socket failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelSocketError {
    /// The upgrade was refused with this HTTP status (401, 403, 404, …).
    #[error("the subscription was refused (HTTP {status})")]
    Refused { status: u16 },
    #[error("the socket failed: {0}")]
    Socket(String),
    #[error("a frame that is not the channel protocol's: {0}")]
    BadFrame(String),
}

fn socket_error(e: impl std::fmt::Display) -> ChannelSocketError {
    ChannelSocketError::Socket(e.to_string())
}

/// One subscriber socket.
pub struct ChannelSocket {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl ChannelSocket {
    /// The next event; `None` once the socket closed.
    pub async fn next(&mut self) -> Result<Option<ChannelEvent>, ChannelSocketError> {
        loop {
            let text = match self.ws.next().await {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(socket_error(e)),
                Some(Ok(Message::Text(t))) => t,
                Some(Ok(_)) => continue,
            };
            let f: Value = serde_json::from_str(&text)
                .map_err(|_| ChannelSocketError::BadFrame(text.to_string()))?;
            let int = |k: &str| f[k].as_i64();
            let event = match f["type"].as_str() {
                Some("message") => int("id")
                    .zip(int("at"))
                    .map(|(id, at)| ChannelEvent::Message {
                        id,
                        at,
                        data: f["data"].clone(),
                    }),
                Some("ready") => int("lastId").map(|last_id| ChannelEvent::Ready {
                    last_id,
                    gap: f["gap"] == true,
                }),
                Some("error") => Some(ChannelEvent::Error {
                    code: f["code"].as_str().unwrap_or_default().to_owned(),
                    message: f["message"].as_str().unwrap_or_default().to_owned(),
                }),
                _ => None,
            };
            return event
                .map(Some)
                .ok_or_else(|| ChannelSocketError::BadFrame(text.to_string()));
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
