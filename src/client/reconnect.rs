//! The loop both clients run in their background task (the live client's
//! `driver.rs`, the simulation client's `sim/driver.rs`): serve a
//! connection until it ends, wait a jittered backoff, open the next one,
//! resume. What differs between the two is a [`Session`].
//!
//! ```text
//!   LIVE ──drop / close──▶ WAITING(delay) ──▶ CONNECTING ──welcome──▶ LIVE
//!     │                        ▲                  │
//!     │ final close            └──────────────────┘ failed: attempt + 1
//!     ▼
//!   CLOSED ◀── a final close or refusal, `close()`, every handle dropped
//! ```
//!
//! Commands keep being served while there is no connection (a session
//! queues what needs one).

use std::future::Future;
use std::time::Duration;

use tokio::sync::mpsc;

use super::keepalive::Keepalive;
use super::raw::{Incoming, RawConnection};
use super::{Backoff, ClientError, ConnState};
use crate::protocol::{close, Encoding, FrameRef};

/// What ends a stretch of the loop.
pub(super) enum Flow {
    Continue,
    /// The connection is gone; reconnect.
    Dropped {
        code: Option<u16>,
        reason: String,
    },
    /// Stop for good (a close code that forbids retrying, `close()`, or no
    /// handles left).
    Stop {
        code: Option<u16>,
    },
}

/// One kind of client's part in the loop: its protocol and its state.
pub(super) trait Session: Send {
    type Command: Send;
    type Welcome: Send;
    type Msg: Send;

    fn backoff(&self) -> &Backoff;

    /// The keepalive period (`None`: none).
    fn keepalive(&self) -> Option<Duration>;

    /// Opens a connection and waits for its welcome, within the connect
    /// timeout. The future owns what it needs.
    fn open(
        &self,
    ) -> impl Future<Output = Result<(RawConnection, Self::Welcome), ClientError>> + Send + 'static;

    /// Decodes a data frame. `Ok(None)`: a message type newer than this
    /// build, ignored (docs/protocol.md, "Evolution"); `Err`: the
    /// connection is dropped (a resume repairs what was lost).
    fn decode(
        encoding: Encoding,
        max_bytes: usize,
        frame: FrameRef<'_>,
    ) -> Result<Option<Self::Msg>, String>;

    /// Close codes after which the client must not reconnect by itself.
    fn is_final(code: Option<u16>) -> bool;

    /// Whether a failed attempt to connect stops the client, and with
    /// which close code. By default: a final close.
    fn stops_on(e: &ClientError) -> Option<Option<u16>> {
        match e {
            ClientError::Disconnected { code, .. } if Self::is_final(*code) => Some(*code),
            _ => None,
        }
    }

    /// The attempt the wait after a dropped connection counts as (its
    /// delay is `backoff().delay(attempt)`). By default 0, the shortest.
    fn attempt_after(&mut self, _code: Option<u16>) -> u32 {
        0
    }

    /// A connection reached LIVE (before [`Self::resume`]).
    fn on_welcome(&mut self, welcome: Self::Welcome);

    /// Sends what a new connection needs (resubscriptions, resends).
    fn resume(&mut self, conn: &mut RawConnection) -> impl Future<Output = Flow> + Send;

    fn on_msg(
        &mut self,
        msg: Self::Msg,
        conn: &mut RawConnection,
    ) -> impl Future<Output = Flow> + Send;

    /// Serves a command (`None`: every handle is gone); `conn` while LIVE.
    fn command(
        &mut self,
        cmd: Option<Self::Command>,
        conn: Option<&mut RawConnection>,
    ) -> impl Future<Output = Flow> + Send;

    /// The connection dropped; the loop reconnects.
    fn on_dropped(&mut self, code: Option<u16>, reason: String);

    /// Reports a connection that ended (a final close, a failed attempt).
    fn disconnected(&mut self, code: Option<u16>, reason: String);

    fn set_state(&mut self, state: ConnState);

    /// The client stopped for good.
    fn shutdown(&mut self, code: Option<u16>);
}

/// Runs `s` from its first connection until it stops.
pub(super) async fn run<S: Session>(
    mut s: S,
    first: RawConnection,
    mut cmds: mpsc::UnboundedReceiver<S::Command>,
) {
    let mut conn = Some(first);
    let mut attempt = 0u32;
    let code = loop {
        if let Some(c) = conn.take() {
            match live(&mut s, c, &mut cmds).await {
                Flow::Stop { code } => break code,
                Flow::Dropped { code, reason } => {
                    attempt = s.attempt_after(code);
                    s.on_dropped(code, reason);
                }
                Flow::Continue => unreachable!("live() returns only when the connection ends"),
            }
        }
        let delay = s.backoff().delay(attempt);
        s.set_state(ConnState::Waiting { attempt, delay });
        if let Err(code) = offline(&mut s, tokio::time::sleep(delay), &mut cmds).await {
            break code;
        }
        s.set_state(ConnState::Connecting { attempt });
        let open = s.open();
        match offline(&mut s, open, &mut cmds).await {
            Err(code) => break code,
            Ok(Ok((c, welcome))) => {
                s.on_welcome(welcome);
                conn = Some(c);
            }
            Ok(Err(e)) => {
                let stop = S::stops_on(&e);
                let reason = match e {
                    ClientError::Disconnected { reason, .. } if stop.is_some() => reason,
                    e => e.to_string(),
                };
                if let Some(code) = stop {
                    s.disconnected(code, reason);
                    break code;
                }
                s.disconnected(None, reason);
                attempt = attempt.saturating_add(1);
            }
        }
    };
    s.shutdown(code);
}

/// Runs `fut` while serving commands (without a connection). `Err` when
/// the client is to stop.
async fn offline<S: Session, F: Future>(
    s: &mut S,
    fut: F,
    cmds: &mut mpsc::UnboundedReceiver<S::Command>,
) -> Result<F::Output, Option<u16>> {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return Ok(out),
            cmd = cmds.recv() => match s.command(cmd, None).await {
                Flow::Stop { code } => return Err(code),
                Flow::Continue | Flow::Dropped { .. } => {}
            },
        }
    }
}

/// Serves one connection until it ends.
async fn live<S: Session>(
    s: &mut S,
    mut conn: RawConnection,
    cmds: &mut mpsc::UnboundedReceiver<S::Command>,
) -> Flow {
    let flow = s.resume(&mut conn).await;
    if !matches!(flow, Flow::Continue) {
        return flow;
    }
    let mut keepalive = Keepalive::start(s.keepalive());
    let flow = loop {
        let flow = tokio::select! {
            received = conn.recv_decoded(S::decode) => {
                keepalive.heard();
                match received {
                    Ok(Incoming::Frame(Ok(Some(msg)))) => s.on_msg(msg, &mut conn).await,
                    Ok(Incoming::Frame(Ok(None))) => Flow::Continue,
                    Ok(Incoming::Frame(Err(e))) => Flow::Dropped { code: None, reason: format!("undecodable frame: {e}") },
                    // Only proves the connection lives (heard above).
                    Ok(Incoming::KeepaliveAck) => Flow::Continue,
                    Ok(Incoming::Closed { code, reason }) if S::is_final(code) => {
                        s.disconnected(code, reason);
                        Flow::Stop { code }
                    }
                    Ok(Incoming::Closed { code, reason }) => Flow::Dropped { code, reason },
                    Err(e) => Flow::Dropped { code: None, reason: e.to_string() },
                }
            }
            cmd = cmds.recv() => s.command(cmd, Some(&mut conn)).await,
            _ = keepalive.due() => keepalive.check(&mut conn).await,
        };
        if !matches!(flow, Flow::Continue) {
            break flow;
        }
    };
    if let Flow::Stop { code: None } = flow {
        let _ = conn.send_close(close::NORMAL, "client closed").await;
    }
    flow
}
