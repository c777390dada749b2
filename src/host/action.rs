//! What an object asks its host to do: the answer to every event.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::io::IoCall;
use crate::protocol::{Encoding, Frame};

/// A message an object sends to its sockets. The host encodes it once per
/// encoding in use, however many sockets receive it.
pub trait Wire {
    fn encode(&self, encoding: Encoding) -> Frame;
}

impl Wire for crate::protocol::ServerMsg {
    fn encode(&self, encoding: Encoding) -> Frame {
        crate::protocol::encode_server(encoding, self)
    }
}

/// What an object keeps per connection. The host stores it in the socket's
/// attachment, so it survives hibernation with the socket; it must
/// serialize (as JSON) to well under 16 KiB. Anything that can grow
/// belongs in storage, keyed by the connection id.
pub trait ConnState: Clone + Serialize + DeserializeOwned {
    /// The wire encoding the socket negotiated.
    fn encoding(&self) -> Encoding;
}

/// One thing for the host to do, in order, after the event that returned it.
///
/// Sends go to the sockets that are open when the action is carried out; a
/// socket that fails to take a frame does not stop the others. Timers and
/// saved connection state are written in the same storage commit as the
/// event's own writes.
#[derive(Clone, Debug, PartialEq)]
pub enum Action<M, S> {
    /// Send `msg` to one connection.
    To(String, M),
    /// Send the same `msg` to each of these connections.
    Many { conns: Vec<String>, msg: M },
    /// Send `msg` to every connection but `except`.
    All { except: Option<String>, msg: M },
    /// Close a connection with a WebSocket close code. The host then hands
    /// the object `on_close` for it.
    Close {
        conn: String,
        code: u16,
        reason: String,
    },
    /// Replace a connection's state (its attachment).
    SaveConn { conn: String, state: S },
    /// Fire `on_timer(name)` at `at_ms` (or as soon after as the platform
    /// wakes the object). Durable: kept in storage, it survives eviction
    /// and restarts; setting a name again moves it.
    SetTimer { name: String, at_ms: i64 },
    /// Forget a durable timer (nothing happens if it is not set).
    CancelTimer { name: String },
    /// Fire `on_timer(name)` at `at_ms` within this wake only: for work
    /// held back a few milliseconds to batch it (a flush). Not durable: an
    /// eviction forgets it, so use it only for what the next event redoes
    /// anyway. Setting a name again keeps the earlier time.
    Soon { name: String, at_ms: i64 },
    /// Platform I/O the object may not do itself (it would let other events
    /// interleave with its state half-changed). The host performs it and
    /// hands the outcome to `on_io(tag, …)`.
    Io { tag: u64, call: IoCall },
    /// A line for the Worker's log (what failed, with detail no client
    /// should see).
    Log(String),
}

impl<M, S> Action<M, S> {
    /// The connection this action sends to or closes, if it names one.
    pub fn conn(&self) -> Option<&str> {
        match self {
            Action::To(c, _) | Action::Close { conn: c, .. } | Action::SaveConn { conn: c, .. } => {
                Some(c)
            }
            _ => None,
        }
    }
}

/// The connection state of a kind that takes no sockets (the jobs ledger,
/// a workflow instance, the cache, sign-in): it only fills the trait's slot.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct NoConn;

impl ConnState for NoConn {
    fn encoding(&self) -> Encoding {
        Encoding::Json
    }
}

/// The message type of a kind that takes no sockets.
pub struct NoMsg;

impl Wire for NoMsg {
    fn encode(&self, _: Encoding) -> Frame {
        Frame::Text(String::new())
    }
}
