//! A raw WebSocket test client: send text, wait for the next message
//! (with a timeout, never a fixed sleep).

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Ws {
    inner: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Result<Self> {
        let (inner, _resp) = tokio_tungstenite::connect_async(url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Self { inner })
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.inner
            .send(Message::text(text))
            .await
            .context("sending")
    }

    /// The next text message as JSON; pings and pongs are skipped.
    pub async fn recv_json(&mut self) -> Result<Value> {
        self.recv_json_within(RECV_TIMEOUT).await
    }

    pub async fn recv_json_within(&mut self, wait: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.inner.next())
                .await
                .map_err(|_| anyhow!("no message within {wait:?}"))?
                .ok_or_else(|| anyhow!("socket closed"))??;
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).context("message is not JSON"),
                Message::Ping(_) | Message::Pong(_) => continue,
                Message::Close(frame) => bail!("socket closed by server: {frame:?}"),
                other => bail!("unexpected frame {other:?}"),
            }
        }
    }

    /// Waits for the next message whose `type` is `ty`, skipping others.
    pub async fn recv_type(&mut self, ty: &str) -> Result<Value> {
        loop {
            let v = self.recv_json().await?;
            if v["type"] == ty {
                return Ok(v);
            }
        }
    }
}
