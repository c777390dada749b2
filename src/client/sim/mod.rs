//! A client for simulation shards (`pylon.sim.v1`, docs/protocol.md,
//! "Simulation shards"): [`SimClient`] joins one shard, numbers and sends
//! inputs, keeps the latest snapshot and the acked seq for prediction, and
//! reconnects with the live client's backoff, keepalive and negotiation.
//!
//! ```no_run
//! use pylon_workers::client::sim::{SimClient, SimClientConfig, SimEvent};
//! use pylon_workers::sim::counter::{Add, Total};
//!
//! # async fn demo() -> Result<(), pylon_workers::client::ClientError> {
//! let config = SimClientConfig::new("ws://127.0.0.1:8787", "counter", "c-1").subscriber("ada");
//! let sim = SimClient::<Add, Total>::join(config).await?;
//! let mut events = sim.events();
//! let seq = sim.send_input(Add::new(5).unwrap())?;
//! let view = sim.wait_acked(seq).await?; // a snapshot with it processed
//! println!("total {} at tick {}", view.snapshot.unwrap().total, view.tick);
//! // For prediction: the snapshot, then these inputs on top of it.
//! let _still_pending = sim.pending();
//! while let Ok(event) = events.recv().await {
//!     if let SimEvent::Snapshot(s) = event {
//!         println!("tick {}: {:?}", s.tick, s.snapshot);
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Reconnecting: as a named subscriber (the server dedups its seqs), every
//! input not acknowledged is sent again with its seq after the new
//! welcome; as the connection itself, seqs restart after the new
//! welcome's `acked` and inputs not acknowledged are reported
//! ([`SimEvent::Dropped`]), never resent. Closes 4410 (finished), 4403,
//! 4401 and 4400 stop the client; 4429 and 4503 in a row wait longer each
//! time. docs/client.md, "Simulation shards", has the rest.

mod book;
mod config;
mod driver;

use std::sync::{Arc, Mutex};

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

pub use config::SimClientConfig;

use self::book::InputBook;
use self::driver::{lock, Command, SimDriver};
use super::reconnect;
use super::{ClientError, ConnState};
use crate::sim::wire::{Ack, SimErr, SnapshotMsg, Welcome};

/// What the client holds of the shard.
#[derive(Clone, Debug, PartialEq)]
pub struct SimView<P> {
    /// The welcome of the current (or last) connection.
    pub welcome: Welcome,
    /// The tick of the latest snapshot (or welcome).
    pub tick: u64,
    /// This subscriber's last processed seq, as of the latest snapshot
    /// (or welcome).
    pub acked: u64,
    /// The latest snapshot (`None` before the first).
    pub snapshot: Option<P>,
    /// The latest snapshot was the last: the simulation finished.
    pub is_final: bool,
    /// Incremented on every change.
    pub version: u64,
}

/// Something that happened, for [`SimClient::events`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum SimEvent<P> {
    /// The connection state changed (`Live.seq` is the welcome's `acked`).
    State(ConnState),
    /// The connection dropped (close code and reason, or a transport error).
    Disconnected { code: Option<u16>, reason: String },
    /// A `sim_welcome`, on every connection.
    Welcome(Welcome),
    /// A `sim_snapshot` (`is_final`: the last one; the socket closes 4410).
    Snapshot(SnapshotMsg<P>),
    /// A `sim_ack`: input `seq` is durable (`dup`: it had been before).
    Ack(Ack),
    /// A `sim_err`, with its code, reason and the seq of the input it
    /// refused. The shard answers each input frame once, in order, so a
    /// refusal it sends without a seq (an input that did not decode, the
    /// message rate) is given the seq of the oldest unanswered input.
    /// Except for `INPUT_REJECTED` (the input was processed, without
    /// effect), the input is not logged and leaves [`SimClient::pending`].
    Err(SimErr),
    /// Anonymous subscribers only: inputs sent on a connection that ended
    /// before they were acknowledged. They are not resent (the next
    /// connection is another subscriber, so a resend could be applied
    /// twice); each may or may not have been applied.
    Dropped { seqs: Vec<u64> },
}

/// A simulation shard joined: `I` is the kind's input, `P` its snapshot
/// (for the counter, `sim::counter::Add` and `sim::counter::Total`).
/// Cheap to clone; the connection closes when the last clone is dropped,
/// or on [`SimClient::close`].
pub struct SimClient<I, P> {
    cmds: mpsc::UnboundedSender<Command>,
    book: Arc<Mutex<InputBook<I>>>,
    state: watch::Receiver<ConnState>,
    view: watch::Receiver<SimView<P>>,
    events: broadcast::Sender<SimEvent<P>>,
}

impl<I, P> Clone for SimClient<I, P> {
    fn clone(&self) -> Self {
        SimClient {
            cmds: self.cmds.clone(),
            book: self.book.clone(),
            state: self.state.clone(),
            view: self.view.clone(),
            events: self.events.clone(),
        }
    }
}

impl<I, P> std::fmt::Debug for SimClient<I, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimClient")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

impl<I, P> SimClient<I, P>
where
    I: Serialize + Clone + Send + 'static,
    P: DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Connects and waits for `sim_welcome`. This first attempt is not
    /// retried: an unreachable server, a refused upgrade
    /// ([`ClientError::Refused`]) or a refused subscriber
    /// ([`ClientError::Sim`]) is returned. Once joined, drops are healed
    /// in the background.
    pub async fn join(config: SimClientConfig) -> Result<SimClient<I, P>, ClientError> {
        let (conn, welcome) = driver::open::<P>(&config).await?;
        let (cmds, cmd_rx) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(ConnState::Connecting { attempt: 0 });
        let (view_tx, view) = watch::channel(SimView {
            welcome: welcome.clone(),
            tick: welcome.tick,
            acked: welcome.acked,
            snapshot: None,
            is_final: false,
            version: 0,
        });
        let (events, _) = broadcast::channel(config.connection.event_capacity.max(1));
        let book = Arc::new(Mutex::new(InputBook::new(config.subscriber.is_some())));
        let mut driver = SimDriver::new(config, book.clone(), state_tx, view_tx, events.clone());
        // Before the handle exists, so its first input finds the
        // connection live.
        reconnect::Session::on_welcome(&mut driver, welcome);
        tokio::spawn(reconnect::run(driver, conn, cmd_rx));
        Ok(SimClient {
            cmds,
            book,
            state,
            view,
            events,
        })
    }

    /// Numbers `input` (the subscriber's next seq, returned) and sends it.
    /// A named subscriber's input sent while disconnected goes out after
    /// the next welcome; an anonymous one fails with
    /// [`ClientError::NotConnected`]. Its answer comes as
    /// [`SimEvent::Ack`] or [`SimEvent::Err`] with this seq.
    pub fn send_input(&self, input: I) -> Result<u64, ClientError> {
        let seq = lock(&self.book).take(input)?;
        self.cmds
            .send(Command::Send)
            .map_err(|_| ClientError::Closed {
                code: self.closed_code(),
            })?;
        Ok(seq)
    }

    /// The subscriber's last seq reflected in the latest snapshot: a
    /// predicting client shows that snapshot with [`Self::pending`]
    /// applied on top.
    pub fn acked(&self) -> u64 {
        self.view.borrow().acked
    }

    /// Inputs sent (or waiting to be) that no snapshot reflects yet, in
    /// seq order.
    pub fn pending(&self) -> Vec<(u64, I)> {
        let acked = self.acked();
        let mut pending = lock(&self.book).pending();
        pending.retain(|(seq, _)| *seq > acked);
        pending
    }

    /// The last seq given out.
    pub fn last_seq(&self) -> u64 {
        lock(&self.book).last()
    }

    /// The tick of the latest snapshot (or welcome).
    pub fn tick(&self) -> u64 {
        self.view.borrow().tick
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> Option<P> {
        self.view.borrow().snapshot.clone()
    }

    /// A copy of the whole view.
    pub fn view(&self) -> SimView<P> {
        self.view.borrow().clone()
    }

    /// The current connection's welcome (its `subscriber`, `conn`, …).
    pub fn welcome(&self) -> Welcome {
        self.view.borrow().welcome.clone()
    }

    pub fn state(&self) -> ConnState {
        self.state.borrow().clone()
    }

    /// A watch on the connection state.
    pub fn state_watch(&self) -> watch::Receiver<ConnState> {
        self.state.clone()
    }

    /// Events from now on. A receiver more than `event_capacity` behind
    /// misses events (`recv` reports `Lagged`).
    pub fn events(&self) -> broadcast::Receiver<SimEvent<P>> {
        self.events.subscribe()
    }

    /// Waits until `pred` holds for the view (checked now, then on every
    /// change) and returns it. Fails once the client has stopped.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&SimView<P>) -> bool,
    ) -> Result<SimView<P>, ClientError> {
        let mut view = self.view.clone();
        let mut state = self.state.clone();
        loop {
            {
                let v = view.borrow_and_update();
                if pred(&v) {
                    return Ok(v.clone());
                }
            }
            if let ConnState::Closed { code } = *state.borrow_and_update() {
                return Err(ClientError::Closed { code });
            }
            tokio::select! {
                changed = view.changed() => changed.map_err(|_| ClientError::Closed { code: self.closed_code() })?,
                changed = state.changed() => changed.map_err(|_| ClientError::Closed { code: self.closed_code() })?,
            }
        }
    }

    /// Waits for a snapshot that reflects input `seq`.
    pub async fn wait_acked(&self, seq: u64) -> Result<SimView<P>, ClientError> {
        self.wait_for(|v| v.snapshot.is_some() && v.acked >= seq)
            .await
    }

    /// Waits until the connection is LIVE (at once if it is).
    pub async fn wait_live(&self) -> Result<(), ClientError> {
        super::wait_live(self.state.clone()).await
    }

    /// Closes the connection (1000) and stops reconnecting.
    pub async fn close(&self) {
        let (reply, rx) = oneshot::channel();
        if self.cmds.send(Command::Close { reply }).is_ok() {
            let _ = rx.await;
        }
    }

    fn closed_code(&self) -> Option<u16> {
        self.state.borrow().closed_code()
    }
}
