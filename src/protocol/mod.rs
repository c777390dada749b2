//! The wire protocol `pylon.v1` (specified in docs/protocol.md).
//!
//! All message types live in one place (`types.rs`, re-exported here). Each
//! encoding has exactly one encode and one decode function per direction,
//! and every case goes through them:
//!
//! ```
//! use pylon_workers::protocol::*;
//!
//! let enc = Encoding::Json;
//! let msg = decode_client(enc, br#"{"type":"unsub","id":"s1"}"#).unwrap();
//! assert_eq!(msg, ClientMsg::Unsub(Unsub { id: "s1".into() }));
//!
//! let frame = encode_server(enc, &ServerMsg::Pong(Pong { t: Some(7) }));
//! assert_eq!(frame, Frame::Text(r#"{"type":"pong","t":7}"#.into()));
//! ```
//!
//! A connection's life, as the server sees it:
//!
//! ```text
//!   upgrade request ── negotiate() ──┬── Err ──▶ HTTP 400 (no usable pylon.* subprotocol)
//!                                    │
//!                                    ▼ Ok: accept, echo Negotiated::echo
//!                              ┌──────────┐
//!                              │   OPEN   │ server sends `welcome`
//!                              └────┬─────┘
//!                                   ▼
//!   ┌──────────────────────────────────────────────────────────────────┐
//!   │ READY  client ▶ hello | sub | unsub | mut | presence | bcast | ping │
//!   │        server ▶ welcome | snap | diff | reset | ack | err |        │
//!   │                 presence_state | presence_diff | bcast | pong      │
//!   │  undecodable frame ▶ `err` (BAD_FRAME / UNKNOWN_TYPE / BAD_MESSAGE), │
//!   │                     stay READY                                     │
//!   └──────┬───────────────────────┬──────────────────────┬─────────────┘
//!          │ frame > limit         │ auth lost / rate     │ peer closes,
//!          ▼                       ▼ abuse / overload     ▼ shard restarts
//!    err FRAME_TOO_LARGE,    close 4401/4403/4429/   CLOSED ─▶ client
//!    close 1009               4503/1008               reconnects, resends
//!          └─────────────▶ CLOSED ◀───────┘           `sub` with `since`
//! ```

mod binary;
pub(crate) mod bounded;
mod error;
pub mod fuzz;
mod json;
mod types;

pub use error::DecodeError;
pub use types::*;

use serde::{Deserialize, Serialize};

/// The keepalive a client sends after some silence: a text frame, the same
/// in both encodings, answered with [`KEEPALIVE_ACK`] by the platform
/// itself (the Durable Object's WebSocket auto-response), so an idle socket
/// never wakes a hibernated shard. Not a message: it never reaches the
/// shard; `ping` stays the round trip through it.
pub const KEEPALIVE: &str = "pylon.keepalive";
/// The answer to [`KEEPALIVE`], a text frame.
pub const KEEPALIVE_ACK: &str = "pylon.keepalive.ack";

/// A wire encoding, chosen by WebSocket subprotocol. Variant order is wire
/// format (`welcome.encoding` in postcard).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Encoding {
    /// `pylon.v1.json`: text frames, one JSON object each. The default.
    #[default]
    Json,
    /// `pylon.v1.postcard`: binary frames, one postcard message each.
    Postcard,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Json, Encoding::Postcard];

    /// The WebSocket subprotocol (`pylon.v1.json`, `pylon.v1.postcard`).
    pub fn subprotocol(self) -> &'static str {
        match self {
            Encoding::Json => "pylon.v1.json",
            Encoding::Postcard => "pylon.v1.postcard",
        }
    }

    pub fn from_subprotocol(s: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.subprotocol() == s)
    }

    /// The short name used in `welcome.encoding` (`json`, `postcard`).
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Postcard => "postcard",
        }
    }

    pub fn from_name(s: &str) -> Option<Encoding> {
        Encoding::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Whether frames are binary (postcard) rather than text (JSON).
    pub fn is_binary(self) -> bool {
        matches!(self, Encoding::Postcard)
    }
}

/// The outcome of subprotocol negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub encoding: Encoding,
    /// The value for the response's `Sec-WebSocket-Protocol` header. When
    /// `Some`, the server must send it: a browser that offered subprotocols
    /// fails the handshake if none is echoed.
    pub echo: Option<&'static str>,
}

/// The client offered `pylon.*` subprotocols, none of which this server
/// speaks (e.g. only a newer version). Answer the upgrade with HTTP 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no supported pylon subprotocol offered (supported: pylon.v1.json, pylon.v1.postcard)")]
pub struct UnsupportedProtocol;

/// Picks the encoding from a `Sec-WebSocket-Protocol` request header (a
/// comma-separated list, in client preference order).
///
/// * The first entry that is a supported subprotocol wins and is echoed.
/// * Other entries (such as `bearer.<token>`) are ignored.
/// * No header, or no `pylon.*` entry at all: JSON, nothing to echo.
/// * Only unsupported `pylon.*` entries: [`UnsupportedProtocol`].
pub fn negotiate(header: Option<&str>) -> Result<Negotiated, UnsupportedProtocol> {
    let mut saw_pylon = false;
    for entry in header.unwrap_or("").split(',').map(str::trim) {
        if let Some(encoding) = Encoding::from_subprotocol(entry) {
            return Ok(Negotiated {
                encoding,
                echo: Some(encoding.subprotocol()),
            });
        }
        saw_pylon |= entry.starts_with("pylon.");
    }
    if saw_pylon {
        Err(UnsupportedProtocol)
    } else {
        Ok(Negotiated {
            encoding: Encoding::Json,
            echo: None,
        })
    }
}

/// The token of a `bearer.<token>` entry in a `Sec-WebSocket-Protocol`
/// header, for clients (browsers) that cannot set `Authorization`.
pub fn bearer_token(header: Option<&str>) -> Option<&str> {
    header?
        .split(',')
        .map(str::trim)
        .find_map(|e| e.strip_prefix("bearer."))
        .filter(|t| !t.is_empty())
}

/// An encoded message, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    pub fn as_ref(&self) -> FrameRef<'_> {
        match self {
            Frame::Text(t) => FrameRef::Text(t),
            Frame::Binary(b) => FrameRef::Binary(b),
        }
    }

    /// The payload bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_ref().as_bytes()
    }

    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A received frame, borrowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameRef<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> FrameRef<'a> {
    pub fn as_bytes(self) -> &'a [u8] {
        match self {
            FrameRef::Text(t) => t.as_bytes(),
            FrameRef::Binary(b) => b,
        }
    }
}

const CLIENT_NAMES: &[&str] = &[
    "hello", "sub", "unsub", "mut", "presence", "bcast", "ping", "call", "watch",
];
const SERVER_NAMES: &[&str] = &[
    "welcome",
    "snap",
    "diff",
    "reset",
    "ack",
    "err",
    "presence_state",
    "presence_diff",
    "bcast",
    "pong",
    "result",
    "value",
];

/// Decodes a client message from a frame's payload. The frame kind is not
/// checked; prefer [`decode_client_frame`] where it is known.
pub fn decode_client(encoding: Encoding, bytes: &[u8]) -> Result<ClientMsg, DecodeError> {
    match encoding {
        Encoding::Json => json::decode_client(bytes),
        Encoding::Postcard => binary::decode(bytes, CLIENT_NAMES),
    }
}

/// Decodes a client message from a received frame, checking its size
/// against `max_frame_bytes` and its kind against the encoding.
pub fn decode_client_frame(
    encoding: Encoding,
    frame: FrameRef<'_>,
    max_frame_bytes: usize,
) -> Result<ClientMsg, DecodeError> {
    check_frame(encoding, frame, max_frame_bytes)?;
    decode_client(encoding, frame.as_bytes())
}

/// Encodes a client message (client side).
pub fn encode_client(encoding: Encoding, msg: &ClientMsg) -> Frame {
    match encoding {
        Encoding::Json => Frame::Text(json::encode_client(msg)),
        Encoding::Postcard => Frame::Binary(binary::encode(msg)),
    }
}

/// Encodes a server message.
pub fn encode_server(encoding: Encoding, msg: &ServerMsg) -> Frame {
    match encoding {
        Encoding::Json => Frame::Text(json::encode_server(msg)),
        Encoding::Postcard => Frame::Binary(binary::encode(msg)),
    }
}

/// Decodes a server message from a frame's payload (client side).
pub fn decode_server(encoding: Encoding, bytes: &[u8]) -> Result<ServerMsg, DecodeError> {
    match encoding {
        Encoding::Json => json::decode_server(bytes),
        Encoding::Postcard => binary::decode(bytes, SERVER_NAMES),
    }
}

/// Like [`decode_client_frame`], for the client side.
pub fn decode_server_frame(
    encoding: Encoding,
    frame: FrameRef<'_>,
    max_frame_bytes: usize,
) -> Result<ServerMsg, DecodeError> {
    check_frame(encoding, frame, max_frame_bytes)?;
    decode_server(encoding, frame.as_bytes())
}

fn check_frame(encoding: Encoding, frame: FrameRef<'_>, max: usize) -> Result<(), DecodeError> {
    let len = frame.as_bytes().len();
    if len > max {
        return Err(DecodeError::FrameTooLarge { len, max });
    }
    match (encoding, frame) {
        (Encoding::Json, FrameRef::Binary(_)) => Err(DecodeError::bad_frame(
            "binary frame on pylon.v1.json (expected text)",
        )),
        (Encoding::Postcard, FrameRef::Text(_)) => Err(DecodeError::bad_frame(
            "text frame on pylon.v1.postcard (expected binary)",
        )),
        _ => Ok(()),
    }
}
