//! The Durable Object host, as the engine sees it: what every kind of
//! object (the live-query shard, a simulation, a matchmaker, …) has in
//! common, written once. A kind implements [`Object`]: it answers events
//! (open, connect, message, close, request, timer, I/O outcome) with
//! [`Action`]s (send, close, save a connection's state, set a timer, ask
//! for I/O). The host owns everything else: hibernatable sockets and their
//! attachments, frame encoding and delivery, the storage handle, named
//! timers multiplexed onto the object's one alarm, and the I/O itself.
//!
//! The Workers host lives in `durable_objects/host.rs` (wasm32 only);
//! [`local::LocalHost`] runs the same contract natively, with a virtual
//! clock, for tests. The contract in prose: docs/host.md.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::host::{local::LocalHost, Action, Object, Open, OpenError};
//! use pylon_workers::host::{ConnState, Request, Response, Wire};
//! use pylon_workers::protocol::{Encoding, Frame, FrameRef};
//! use pylon_workers::storage::{SqlConn, SqliteConn};
//! use std::rc::Rc;
//!
//! /// Echoes every text frame to everyone, and counts them in a timer.
//! struct Echo;
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Peer;
//! impl ConnState for Peer { fn encoding(&self) -> Encoding { Encoding::Json } }
//! struct Text(String);
//! impl Wire for Text { fn encode(&self, _: Encoding) -> Frame { Frame::Text(self.0.clone()) } }
//!
//! impl<C: SqlConn> Object<C> for Echo {
//!     type Msg = Text;
//!     type Conn = Peer;
//!     async fn open(_: Open<'_, C>, _: Vec<(String, Peer)>) -> Result<(Self, Vec<Action<Text, Peer>>), OpenError> {
//!         Ok((Echo, Vec::new()))
//!     }
//!     fn accept(&mut self, _: &Request, _: Encoding, _: i64) -> Result<Peer, Response> { Ok(Peer) }
//!     async fn on_message(&mut self, _: &str, frame: FrameRef<'_>, _: i64) -> Vec<Action<Text, Peer>> {
//!         let text = String::from_utf8_lossy(frame.as_bytes()).into_owned();
//!         vec![Action::All { except: None, msg: Text(text) }]
//!     }
//! }
//!
//! let mut host = LocalHost::<Rc<SqliteConn>, Echo>::open_in_memory("room").unwrap();
//! let a = host.connect(Encoding::Json).unwrap();
//! let b = host.connect(Encoding::Json).unwrap();
//! host.message(&a, FrameRef::Text("hi")).unwrap();
//! assert_eq!(host.take_sent(&b), vec![Frame::Text("hi".into())]);
//! # }
//! ```

mod action;
pub mod core;
mod erased;
mod io;
#[cfg(not(target_arch = "wasm32"))]
pub mod local;
mod object;
mod request;
pub mod timers;
pub mod window;

pub use self::core::{Attachment, Effect, HostCore};
pub use action::{Action, ConnState, NoConn, NoMsg, Wire};
pub use erased::{ErasedCore, JsonEffects, Pending};
pub use io::{IoCall, IoOutcome};
pub use object::{Object, Open, OpenError};
pub use request::{refusal, Method, Refusal, Request, Response};
