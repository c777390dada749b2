//! The simulation client's background task: the [`Session`] the reconnect
//! loop runs for `pylon.sim.v1`. It sends inputs from the book, matches
//! each answer to its input, and publishes the view and the events.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, oneshot, watch};

use super::super::raw::{offer, Incoming, RawConnection};
use super::super::reconnect::{Flow, Session};
use super::super::{Backoff, ClientError, ConnState};
use super::book::InputBook;
use super::{SimClientConfig, SimEvent, SimView};
use crate::protocol::{close, Encoding, FrameRef};
use crate::sim::wire::{
    self, close::FINISHED, InputMsg, SimClientMsg, SimServerMsg, Welcome, SIM_PROTOCOL,
};
use crate::sim::{SimError, SimErrorCode};

pub(super) enum Command {
    /// New inputs are in the book.
    Send,
    Close {
        reply: oneshot::Sender<()>,
    },
}

pub(super) fn lock<I>(book: &Mutex<InputBook<I>>) -> MutexGuard<'_, InputBook<I>> {
    // The book stays consistent at every step; a panic elsewhere does not
    // make it unreadable.
    book.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens the socket and waits for `sim_welcome`, within the connect
/// timeout.
pub(super) async fn open<P: DeserializeOwned>(
    config: &SimClientConfig,
) -> Result<(RawConnection, Welcome), ClientError> {
    let c = &config.connection;
    let attempt = async {
        let url = config.ws_url()?;
        let offer = offer(c.encoding, c.token.as_deref());
        let mut conn =
            RawConnection::connect_offering(&url, &offer, c.encoding, c.max_frame_bytes).await?;
        let welcome = recv_welcome::<P>(&mut conn).await?;
        Ok((conn, welcome))
    };
    tokio::time::timeout(c.connect_timeout, attempt)
        .await
        .unwrap_or(Err(ClientError::Timeout))
}

/// The `sim_welcome` that opens every socket, its protocol and encoding
/// checked. A `sim_err` before it (a subscriber the kind refuses) is
/// [`ClientError::Sim`].
async fn recv_welcome<P: DeserializeOwned>(
    conn: &mut RawConnection,
) -> Result<Welcome, ClientError> {
    loop {
        let received = conn.recv_decoded(decode::<P>).await?;
        let msg = match received {
            Incoming::Frame(Ok(Some(msg))) => msg,
            Incoming::Frame(Ok(None)) | Incoming::KeepaliveAck => continue,
            Incoming::Frame(Err(e)) => return Err(ClientError::Protocol(e)),
            Incoming::Closed { code, reason } => {
                return Err(ClientError::Disconnected { code, reason })
            }
        };
        return match msg {
            SimServerMsg::Welcome(w)
                if w.protocol == SIM_PROTOCOL && w.encoding == conn.encoding() =>
            {
                Ok(w)
            }
            SimServerMsg::Welcome(w) => Err(ClientError::Protocol(format!(
                "sim_welcome says protocol {:?} / encoding {:?}, expected {SIM_PROTOCOL} / {:?}",
                w.protocol,
                w.encoding,
                conn.encoding()
            ))),
            SimServerMsg::Err(e) => Err(ClientError::Sim(e)),
            SimServerMsg::Snapshot(_) | SimServerMsg::Ack(_) => {
                Err(ClientError::Protocol("expected sim_welcome first".into()))
            }
        };
    }
}

/// One frame from the server; message types newer than this build are
/// `None` (ignored).
fn decode<P: DeserializeOwned>(
    encoding: Encoding,
    _max_bytes: usize,
    frame: FrameRef<'_>,
) -> Result<Option<SimServerMsg<P>>, String> {
    match wire::decode_server(encoding, frame) {
        Ok(m) => Ok(Some(m)),
        Err(SimError::UnknownType(_)) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Refusals the shard sends without a seq, in answer to an input frame it
/// could not read or did not read (rate). Every input frame gets exactly
/// one answer, `sim_ack` or `sim_err`, in order, so such an answer is the
/// oldest input still unanswered on this connection.
fn answers_the_oldest_input(code: SimErrorCode) -> bool {
    matches!(
        code,
        SimErrorCode::RateLimited
            | SimErrorCode::BadFrame
            | SimErrorCode::UnknownType
            | SimErrorCode::BadInput
            | SimErrorCode::InputTooLarge
    )
}

pub(super) struct SimDriver<I, P> {
    config: SimClientConfig,
    book: Arc<Mutex<InputBook<I>>>,
    state: watch::Sender<ConnState>,
    view: watch::Sender<SimView<P>>,
    events: broadcast::Sender<SimEvent<P>>,
    /// Seqs sent on this connection and not answered yet, oldest first.
    unanswered: VecDeque<u64>,
    /// Consecutive connections closed for their rate (or load): each
    /// waits longer before the next.
    strikes: u32,
    close_reply: Option<oneshot::Sender<()>>,
}

impl<I, P> SimDriver<I, P>
where
    I: Serialize + Clone + Send + 'static,
    P: DeserializeOwned + Clone + Send + Sync + 'static,
{
    pub(super) fn new(
        config: SimClientConfig,
        book: Arc<Mutex<InputBook<I>>>,
        state: watch::Sender<ConnState>,
        view: watch::Sender<SimView<P>>,
        events: broadcast::Sender<SimEvent<P>>,
    ) -> SimDriver<I, P> {
        SimDriver {
            config,
            book,
            state,
            view,
            events,
            unanswered: VecDeque::new(),
            strikes: 0,
            close_reply: None,
        }
    }

    /// Sends every input the book has not sent on this connection, in
    /// seq order (whichever command asked: the order is the book's).
    async fn send_unsent(&mut self, conn: &mut RawConnection) -> Flow {
        let unsent = lock(&self.book).unsent();
        for (seq, input) in unsent {
            let msg = SimClientMsg::Input(InputMsg { seq, input });
            let frame = wire::encode_client(conn.encoding(), &msg);
            if let Err(e) = conn.send_frame(frame).await {
                return Flow::Dropped {
                    code: None,
                    reason: e.to_string(),
                };
            }
            self.unanswered.push_back(seq);
        }
        Flow::Continue
    }

    fn emit(&self, event: SimEvent<P>) {
        // No receiver is fine: events are for whoever listens.
        let _ = self.events.send(event);
    }
}

impl<I, P> Session for SimDriver<I, P>
where
    I: Serialize + Clone + Send + 'static,
    P: DeserializeOwned + Clone + Send + Sync + 'static,
{
    type Command = Command;
    type Welcome = Welcome;
    type Msg = SimServerMsg<P>;

    fn backoff(&self) -> &Backoff {
        &self.config.connection.backoff
    }

    fn keepalive(&self) -> Option<Duration> {
        self.config.connection.keepalive
    }

    fn open(
        &self,
    ) -> impl Future<Output = Result<(RawConnection, Welcome), ClientError>> + Send + 'static {
        let config = self.config.clone();
        async move { open::<P>(&config).await }
    }

    fn decode(
        encoding: Encoding,
        max_bytes: usize,
        frame: FrameRef<'_>,
    ) -> Result<Option<SimServerMsg<P>>, String> {
        decode(encoding, max_bytes, frame)
    }

    /// The live protocol's final codes, and 4410: the simulation finished.
    fn is_final(code: Option<u16>) -> bool {
        matches!(
            code,
            Some(close::PROTOCOL | close::UNAUTHORIZED | close::FORBIDDEN | FINISHED)
        )
    }

    /// Also a refused upgrade whose status matches a final close code
    /// (400, 401, 403, 410: `4000 + status`), and a refusal before the
    /// welcome (`FORBIDDEN`, `SIM_FINISHED`): trying again cannot help.
    fn stops_on(e: &ClientError) -> Option<Option<u16>> {
        let code = match e {
            ClientError::Disconnected { code, .. } => *code,
            ClientError::Refused { status } => Some(4000 + status),
            ClientError::Sim(e) => Some(4000 + e.code.status()),
            _ => None,
        };
        Self::is_final(code).then_some(code)
    }

    /// Rate (4429) and load (4503) closes in a row wait longer each time.
    fn attempt_after(&mut self, code: Option<u16>) -> u32 {
        if matches!(code, Some(close::RATE_LIMITED | close::OVERLOADED)) {
            self.strikes += 1;
        } else {
            self.strikes = 0;
        }
        self.strikes
    }

    fn on_welcome(&mut self, w: Welcome) {
        let dropped = lock(&self.book).welcome(w.acked);
        self.view.send_modify(|v| {
            v.welcome = w.clone();
            v.tick = w.tick;
            v.acked = w.acked;
            v.version += 1;
        });
        self.set_state(ConnState::Live {
            conn: w.conn.clone(),
            seq: w.acked,
        });
        self.emit(SimEvent::Welcome(w));
        if !dropped.is_empty() {
            self.emit(SimEvent::Dropped { seqs: dropped });
        }
    }

    /// Sends, in seq order, what the welcome left to (re)send.
    async fn resume(&mut self, conn: &mut RawConnection) -> Flow {
        self.unanswered.clear();
        self.send_unsent(conn).await
    }

    async fn on_msg(&mut self, msg: SimServerMsg<P>, _conn: &mut RawConnection) -> Flow {
        match msg {
            // Only the first message of a socket; another is not expected.
            SimServerMsg::Welcome(_) => {}
            SimServerMsg::Snapshot(s) => {
                self.view.send_modify(|v| {
                    v.tick = s.tick;
                    v.acked = s.acked;
                    v.snapshot = Some(s.snapshot.clone());
                    v.is_final = s.is_final;
                    v.version += 1;
                });
                lock(&self.book).processed(s.acked);
                self.emit(SimEvent::Snapshot(s));
            }
            SimServerMsg::Ack(a) => {
                lock(&self.book).acked(a.seq);
                if let Some(i) = self.unanswered.iter().position(|&s| s == a.seq) {
                    self.unanswered.remove(i);
                }
                self.emit(SimEvent::Ack(a));
            }
            SimServerMsg::Err(mut e) => {
                if e.seq.is_none() && answers_the_oldest_input(e.code) {
                    e.seq = self.unanswered.front().copied();
                }
                // INPUT_REJECTED follows the input's ack: it was processed.
                if let (Some(seq), false) = (e.seq, e.code == SimErrorCode::InputRejected) {
                    lock(&self.book).refused(seq);
                    if let Some(i) = self.unanswered.iter().position(|&s| s == seq) {
                        self.unanswered.remove(i);
                    }
                }
                self.emit(SimEvent::Err(e));
            }
        }
        Flow::Continue
    }

    async fn command(&mut self, cmd: Option<Command>, conn: Option<&mut RawConnection>) -> Flow {
        match cmd {
            None => Flow::Stop { code: None },
            Some(Command::Close { reply }) => {
                self.close_reply = Some(reply);
                Flow::Stop { code: None }
            }
            Some(Command::Send) => match conn {
                Some(conn) => self.send_unsent(conn).await,
                None => Flow::Continue, // sent after the next welcome
            },
        }
    }

    fn on_dropped(&mut self, code: Option<u16>, reason: String) {
        lock(&self.book).offline();
        self.unanswered.clear();
        self.disconnected(code, reason);
    }

    fn disconnected(&mut self, code: Option<u16>, reason: String) {
        self.emit(SimEvent::Disconnected { code, reason });
    }

    fn set_state(&mut self, state: ConnState) {
        self.state.send_replace(state.clone());
        self.emit(SimEvent::State(state));
    }

    fn shutdown(&mut self, code: Option<u16>) {
        lock(&self.book).close(code);
        self.set_state(ConnState::Closed { code });
        if let Some(reply) = self.close_reply.take() {
            let _ = reply.send(());
        }
    }
}
