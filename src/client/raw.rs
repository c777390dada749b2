//! One WebSocket to a shard, speaking pylon.v1 frame by frame. No
//! reconnects, no state: what [`super::Client`] is built on, and what tests
//! use to send frames a well-behaved client never would.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{ClientConfig, ClientError};
use crate::protocol::{
    self, ClientMsg, DecodeError, Encoding, Frame, FrameRef, ServerMsg, Welcome,
};

/// A frame received, decoded where possible.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum Received {
    /// A message.
    Msg(ServerMsg),
    /// A frame that did not decode (including server message types newer
    /// than this build: [`DecodeError::UnknownType`]).
    Undecodable(DecodeError),
    /// The answer to [`RawConnection::send_keepalive`] (answered by the
    /// platform, not the shard).
    KeepaliveAck,
    /// The server closed the connection (close code, if one was sent).
    Closed { code: Option<u16>, reason: String },
}

/// A frame received, before [`Received`] names the live protocol's
/// messages: a data frame as `decode` made it, or what the transport says.
pub(super) enum Incoming<T> {
    Frame(T),
    KeepaliveAck,
    Closed { code: Option<u16>, reason: String },
}

/// The `Sec-WebSocket-Protocol` offer: the encoding's subprotocol, then
/// the token as `bearer.<token>` (docs/protocol.md, "Negotiation").
pub(super) fn offer(encoding: Encoding, token: Option<&str>) -> Vec<String> {
    let mut offer = vec![encoding.subprotocol().to_owned()];
    if let Some(token) = token {
        offer.push(format!("bearer.{token}"));
    }
    offer
}

/// An open pylon.v1 WebSocket.
pub struct RawConnection {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    encoding: Encoding,
    max_frame_bytes: usize,
    /// Data bytes received and not yet receipted (`recv`).
    unreceipted: u64,
    /// Whether to send receipts (tests turn them off to fall behind).
    receipts: bool,
    /// Bytes between two receipts: from the `welcome`'s window, if it
    /// announced one.
    receipt_step: u64,
}

impl std::fmt::Debug for RawConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConnection")
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

impl RawConnection {
    /// Opens the WebSocket for `config` (URL, shard, encoding, token) and
    /// checks that the server echoed the encoding's subprotocol. Does not
    /// wait for `welcome`: the caller receives it (see [`Self::recv_welcome`]).
    pub async fn connect(config: &ClientConfig) -> Result<RawConnection, ClientError> {
        Self::connect_offering(
            &config.ws_url()?,
            &offer(config.encoding, config.token.as_deref()),
            config.encoding,
            config.max_frame_bytes,
        )
        .await
    }

    /// Opens a WebSocket to `url` offering exactly `subprotocols` (may be
    /// empty), and speaks `encoding` on it. With a non-empty offer, the
    /// server must echo `encoding`'s subprotocol.
    pub async fn connect_offering(
        url: &str,
        subprotocols: &[String],
        encoding: Encoding,
        max_frame_bytes: usize,
    ) -> Result<RawConnection, ClientError> {
        let mut request = url
            .into_client_request()
            .map_err(|e| ClientError::InvalidConfig(e.to_string()))?;
        if !subprotocols.is_empty() {
            let header = HeaderValue::from_str(&subprotocols.join(", ")).map_err(|_| {
                ClientError::InvalidConfig(
                    "subprotocol (or token) is not a valid header value".into(),
                )
            })?;
            request
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", header);
        }
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(max_frame_bytes);
        ws_config.max_frame_size = Some(max_frame_bytes);
        let (ws, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(ws_config), true)
                .await
                .map_err(handshake_error)?;
        if !subprotocols.is_empty() {
            let echoed = response
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok());
            if echoed != Some(encoding.subprotocol()) {
                return Err(ClientError::Handshake(format!(
                    "server answered subprotocol {echoed:?}, expected {:?}",
                    encoding.subprotocol()
                )));
            }
        }
        Ok(RawConnection {
            ws,
            encoding,
            max_frame_bytes,
            unreceipted: 0,
            receipts: true,
            receipt_step: crate::host::window::RECEIPT_STEP,
        })
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Encodes and sends one message.
    pub async fn send(&mut self, msg: &ClientMsg) -> Result<(), ClientError> {
        self.send_frame(protocol::encode_client(self.encoding, msg))
            .await
    }

    /// Sends an encoded frame (of any protocol spoken over this socket).
    pub(super) async fn send_frame(&mut self, frame: Frame) -> Result<(), ClientError> {
        let frame = match frame {
            Frame::Text(t) => Message::text(t),
            Frame::Binary(b) => Message::binary(b),
        };
        self.ws.send(frame).await.map_err(transport)
    }

    /// Sends a text frame as is (whatever the encoding).
    pub async fn send_text(&mut self, text: impl Into<String>) -> Result<(), ClientError> {
        self.ws
            .send(Message::text(text.into()))
            .await
            .map_err(transport)
    }

    /// Sends the keepalive frame ([`protocol::KEEPALIVE`]); its answer is
    /// [`Received::KeepaliveAck`]. Unlike `ping` it does not wake a
    /// hibernated shard.
    pub async fn send_keepalive(&mut self) -> Result<(), ClientError> {
        self.send_text(protocol::KEEPALIVE).await
    }

    /// Stops (or restarts) sending receipts, to play a client that falls
    /// behind without stopping to read (docs/protocol.md, "Slow readers").
    pub fn set_receipts(&mut self, on: bool) {
        self.receipts = on;
    }

    /// Sends a binary frame as is (whatever the encoding).
    pub async fn send_binary(&mut self, bytes: impl Into<Vec<u8>>) -> Result<(), ClientError> {
        self.ws
            .send(Message::binary(bytes.into()))
            .await
            .map_err(transport)
    }

    /// The next frame from the server. WebSocket pings are answered by the
    /// transport and not reported. After [`Received::Closed`] the
    /// connection is finished; receiving again is
    /// [`ClientError::Disconnected`].
    pub async fn recv(&mut self) -> Result<Received, ClientError> {
        let received = self
            .recv_decoded(|encoding, max, frame| {
                protocol::decode_server_frame(encoding, frame, max)
            })
            .await?;
        if let Incoming::Frame(Ok(ServerMsg::Welcome(w))) = &received {
            self.receipt_step = crate::host::window::receipt_step(w.window);
        }
        Ok(match received {
            Incoming::Frame(Ok(m)) => Received::Msg(m),
            Incoming::Frame(Err(e)) => Received::Undecodable(e),
            Incoming::KeepaliveAck => Received::KeepaliveAck,
            Incoming::Closed { code, reason } => Received::Closed { code, reason },
        })
    }

    /// The next frame, data frames decoded by `decode` (given the
    /// encoding and the frame limit): what [`Self::recv`] and the
    /// simulation client's socket share.
    pub(super) async fn recv_decoded<T>(
        &mut self,
        decode: impl FnOnce(Encoding, usize, FrameRef<'_>) -> T,
    ) -> Result<Incoming<T>, ClientError> {
        loop {
            self.send_receipt().await?;
            let msg = match self.ws.next().await {
                None => {
                    return Err(ClientError::Disconnected {
                        code: None,
                        reason: "connection closed".into(),
                    })
                }
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => {
                    return Ok(Incoming::Closed {
                        code: None,
                        reason: String::new(),
                    })
                }
                Some(Err(e)) => return Err(transport(e)),
                Some(Ok(m)) => m,
            };
            let frame = match &msg {
                Message::Text(t) if t.as_str() == protocol::KEEPALIVE_ACK => {
                    return Ok(Incoming::KeepaliveAck)
                }
                Message::Text(t) => {
                    self.unreceipted += t.len() as u64;
                    FrameRef::Text(t.as_str())
                }
                Message::Binary(b) => {
                    self.unreceipted += b.len() as u64;
                    FrameRef::Binary(b)
                }
                Message::Close(c) => {
                    let (code, reason) = match c {
                        Some(c) => (Some(u16::from(c.code)), c.reason.to_string()),
                        None => (None, String::new()),
                    };
                    return Ok(Incoming::Closed { code, reason });
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            };
            return Ok(Incoming::Frame(decode(
                self.encoding,
                self.max_frame_bytes,
                frame,
            )));
        }
    }

    /// Once a receipt step's worth of bytes was received, tells the server
    /// (`recv`), before reading on. Cancel-safe, as `recv_decoded` must
    /// be: `feed` queues the frame in the same poll that it returns, and
    /// the count is reset only then; a flush cut short completes with the
    /// next write or read.
    async fn send_receipt(&mut self) -> Result<(), ClientError> {
        if !self.receipts || self.unreceipted < self.receipt_step {
            return Ok(());
        }
        let frame = crate::host::window::receipt_frame(self.encoding, self.unreceipted);
        let msg = match frame {
            Frame::Text(t) => Message::text(t),
            Frame::Binary(b) => Message::binary(b),
        };
        self.ws.feed(msg).await.map_err(transport)?;
        self.unreceipted = 0;
        self.ws.flush().await.map_err(transport)
    }

    /// The next message, skipping frames that do not decode; a close is
    /// [`ClientError::Disconnected`].
    pub async fn recv_msg(&mut self) -> Result<ServerMsg, ClientError> {
        loop {
            match self.recv().await? {
                Received::Msg(m) => return Ok(m),
                Received::Undecodable(_) | Received::KeepaliveAck => continue,
                Received::Closed { code, reason } => {
                    return Err(ClientError::Disconnected { code, reason })
                }
            }
        }
    }

    /// Waits for the `welcome` that opens every connection and checks its
    /// protocol and encoding. A close or an `err` before it fails.
    pub async fn recv_welcome(&mut self) -> Result<Welcome, ClientError> {
        loop {
            match self.recv().await? {
                Received::Msg(ServerMsg::Welcome(w)) => {
                    if w.protocol != protocol::PROTOCOL || w.encoding != self.encoding {
                        return Err(ClientError::Protocol(format!(
                            "welcome says protocol {:?} / encoding {:?}, expected {} / {:?}",
                            w.protocol,
                            w.encoding,
                            protocol::PROTOCOL,
                            self.encoding
                        )));
                    }
                    return Ok(w);
                }
                Received::Msg(ServerMsg::Err(e)) => {
                    return Err(ClientError::Server {
                        code: e.code,
                        message: e.message,
                    })
                }
                Received::Msg(other) => {
                    return Err(ClientError::Protocol(format!(
                        "expected welcome, got {}",
                        other.name()
                    )))
                }
                Received::Undecodable(DecodeError::UnknownType { .. }) | Received::KeepaliveAck => {
                    continue
                }
                Received::Undecodable(e) => return Err(ClientError::Decode(e)),
                Received::Closed { code, reason } => {
                    return Err(ClientError::Disconnected { code, reason })
                }
            }
        }
    }

    /// Closes with `code` (e.g. 1000) and waits briefly (1 s) for the
    /// server's reply.
    pub async fn close(mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        self.send_close(code, reason).await?;
        let drain = async { while let Some(Ok(_)) = self.ws.next().await {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), drain).await;
        Ok(())
    }
}

impl RawConnection {
    /// Sends a close frame without waiting for the reply.
    pub(super) async fn send_close(&mut self, code: u16, reason: &str) -> Result<(), ClientError> {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        self.ws.close(Some(frame)).await.map_err(transport)
    }
}

fn transport(e: tungstenite::Error) -> ClientError {
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            ClientError::Disconnected {
                code: None,
                reason: "connection closed".into(),
            }
        }
        e => ClientError::Transport(e.to_string()),
    }
}

fn handshake_error(e: tungstenite::Error) -> ClientError {
    match e {
        tungstenite::Error::Http(response) => ClientError::Refused {
            status: response.status().as_u16(),
        },
        tungstenite::Error::Url(e) => ClientError::InvalidConfig(e.to_string()),
        tungstenite::Error::Protocol(e) => ClientError::Handshake(e.to_string()),
        e => ClientError::Transport(e.to_string()),
    }
}
