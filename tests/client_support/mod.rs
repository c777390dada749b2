//! A scripted, in-process pylon.v1 server for the client tests: it accepts
//! WebSockets on 127.0.0.1, negotiates the subprotocol like the real one
//! (`protocol::negotiate`), and hands each connection to the test, which
//! decides message by message what the server says. `sim.rs` adds the
//! simulation shard's side (`pylon.sim.v1`).

#![allow(dead_code)]

pub mod sim;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use pylon_workers::client::{Backoff, Client, ClientConfig};
use pylon_workers::protocol::{self, ClientMsg, Encoding, Frame, ServerMsg, Welcome};
use pylon_workers::value::{Row, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// What the server puts in the response's `Sec-WebSocket-Protocol`.
#[derive(Clone, Copy, Debug)]
pub enum Echo {
    /// What `protocol::negotiate` says (the real server's behaviour).
    Negotiate,
    /// Nothing.
    Nothing,
    /// This value, whatever was offered.
    Fixed(&'static str),
}

pub struct FakeServer {
    addr: SocketAddr,
    conns: mpsc::UnboundedReceiver<FakeConn>,
}

impl FakeServer {
    pub async fn start() -> FakeServer {
        FakeServer::start_with(Echo::Negotiate).await
    }

    pub async fn start_with(echo: Echo) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut n = 0;
            while let Ok((stream, _)) = listener.accept().await {
                n += 1;
                if let Some(conn) = FakeConn::handshake(stream, echo, n).await {
                    if tx.send(conn).is_err() {
                        return;
                    }
                }
            }
        });
        FakeServer { addr, conns }
    }

    /// `ws://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// A client config for this server with fast reconnects and no keepalive.
    pub fn config(&self, shard: &str, encoding: Encoding) -> ClientConfig {
        ClientConfig::new(self.url(), shard)
            .encoding(encoding)
            .backoff(Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(100),
                factor: 2.0,
            })
            .keepalive(None)
    }

    /// Connects a client and plays the server's side of the opening (a
    /// `welcome` at seq 7).
    pub async fn connect(&mut self, config: ClientConfig) -> (Client, FakeConn) {
        let (client, conn) = tokio::join!(Client::connect(config), async {
            let mut conn = self.accept().await;
            conn.welcome(7).await;
            conn
        });
        (client.expect("connect"), conn)
    }

    /// The next connection (after its upgrade).
    pub async fn accept(&mut self) -> FakeConn {
        tokio::time::timeout(PATIENCE, self.conns.recv())
            .await
            .expect("no connection came")
            .unwrap()
    }

    /// Whether a connection arrives within `wait`.
    pub async fn try_accept(&mut self, wait: Duration) -> Option<FakeConn> {
        tokio::time::timeout(wait, self.conns.recv())
            .await
            .ok()
            .flatten()
    }
}

pub struct FakeConn {
    ws: WebSocketStream<TcpStream>,
    pub encoding: Encoding,
    /// The `Sec-WebSocket-Protocol` header the client sent.
    pub offered: Option<String>,
    pub path: String,
    /// The request's query string, if any.
    pub query: Option<String>,
    /// `c<n>`: the n-th connection to this server.
    pub conn_id: String,
}

impl FakeConn {
    // The callback's error type is tungstenite's, and large.
    #[allow(clippy::result_large_err)]
    async fn handshake(stream: TcpStream, echo: Echo, n: usize) -> Option<FakeConn> {
        type Seen = (Option<String>, String, Option<String>, Encoding);
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let seen2 = seen.clone();
        let callback = move |req: &Request, mut resp: Response| {
            let offered = req
                .headers()
                .get("Sec-WebSocket-Protocol")
                .and_then(|v| v.to_str().ok());
            let negotiated =
                protocol::negotiate(offered).expect("fake server: unsupported subprotocol");
            let echoed = match echo {
                Echo::Negotiate => negotiated.echo,
                Echo::Nothing => None,
                Echo::Fixed(s) => Some(s),
            };
            if let Some(e) = echoed {
                resp.headers_mut()
                    .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(e));
            }
            *seen2.lock().unwrap() = (
                offered.map(str::to_owned),
                req.uri().path().to_owned(),
                req.uri().query().map(str::to_owned),
                negotiated.encoding,
            );
            Ok(resp)
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, callback)
            .await
            .ok()?;
        let (offered, path, query, encoding) = seen.lock().unwrap().clone();
        Some(FakeConn {
            ws,
            encoding,
            offered,
            path,
            query,
            conn_id: format!("c{n}"),
        })
    }

    pub async fn send(&mut self, msg: ServerMsg) {
        self.send_frame(protocol::encode_server(self.encoding, &msg))
            .await;
    }

    /// Sends an encoded frame.
    pub async fn send_frame(&mut self, frame: Frame) {
        let frame = match frame {
            Frame::Text(t) => Message::text(t),
            Frame::Binary(b) => Message::binary(b),
        };
        self.ws.send(frame).await.expect("fake server: send failed");
    }

    /// Sends a text frame as is.
    pub async fn send_raw_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text))
            .await
            .expect("fake server: send failed");
    }

    /// Sends `welcome` for the shard in the request path, at `seq`.
    pub async fn welcome(&mut self, seq: u64) {
        let shard = self
            .path
            .trim_start_matches("/v1/shards/")
            .trim_end_matches("/ws")
            .to_owned();
        let welcome = Welcome {
            protocol: protocol::PROTOCOL.into(),
            shard,
            seq,
            conn: self.conn_id.clone(),
            encoding: self.encoding,
            window: None,
        };
        self.send(ServerMsg::Welcome(welcome)).await;
    }

    /// The next frame as received (pings and pongs skipped).
    pub async fn recv_frame(&mut self) -> Message {
        loop {
            let msg = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("fake server: nothing received")
                .expect("fake server: connection ended")
                .expect("fake server: receive failed");
            if !matches!(msg, Message::Ping(_) | Message::Pong(_)) {
                return msg;
            }
        }
    }

    /// The next client message, decoded in the negotiated encoding.
    pub async fn recv(&mut self) -> ClientMsg {
        let frame = self.recv_frame().await;
        let bytes: &[u8] = match &frame {
            Message::Text(t) if !self.encoding.is_binary() => t.as_bytes(),
            Message::Binary(b) if self.encoding.is_binary() => b,
            other => panic!(
                "fake server: unexpected frame {other:?} on {:?}",
                self.encoding
            ),
        };
        protocol::decode_client(self.encoding, bytes)
            .expect("fake server: undecodable client message")
    }

    /// Asserts the client sends nothing for `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(Ok(msg))) = tokio::time::timeout(wait, self.ws.next()).await {
            panic!("fake server: expected silence, got {msg:?}");
        }
    }

    /// Closes cleanly with `code`.
    pub async fn close(mut self, code: u16) {
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "fake server".into(),
        };
        let _ = self.ws.close(Some(frame)).await;
    }

    /// Drops the TCP connection without a close frame.
    pub fn kill(self) {
        drop(self);
    }
}

pub fn row(id: &str, fields: &[(&str, Value)]) -> Row {
    let mut row: Row = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    row.insert("id".into(), Value::Text(id.into()));
    row
}

pub fn text(s: &str) -> Value {
    Value::Text(s.into())
}

pub fn ids(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The next event for which `want` holds (of either client).
pub async fn next_event<E: Clone>(
    events: &mut tokio::sync::broadcast::Receiver<E>,
    want: impl Fn(&E) -> bool,
) -> E {
    loop {
        let e = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("no such event")
            .unwrap();
        if want(&e) {
            return e;
        }
    }
}
