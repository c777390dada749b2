//! Shared helpers of the simulation tests: a local host over real SQLite,
//! the frames a socket received decoded, and `Arena`, a 20 Hz test kind
//! with movement, per-subscriber views and every hook in use.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use pylon_workers::app::App;
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::Method;
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, Frame};
use pylon_workers::sim::aoi::within;
use pylon_workers::sim::wire::{self, InputMsg, SimClientMsg, SimServerMsg};
use pylon_workers::sim::{
    default_authorize_subscribe, is_connection_id, Now, SimConfig, SimShard, SimState, Step,
};
use pylon_workers::storage::SqliteConn;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};

pub type Db = Rc<SqliteConn>;
pub type Host<S> = LocalHost<Db, SimShard<S, Db>>;

pub fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(r#"{"entities":[]}"#))
}

/// A host of shard `name` of kind `S`, and its database.
pub fn host<S: SimState>(name: &str) -> (Host<S>, Db) {
    let db = Rc::new(SqliteConn::open_in_memory().unwrap());
    (LocalHost::open(db.clone(), name, app()).unwrap(), db)
}

/// Sends input `seq` over `conn` in `encoding`.
pub fn send<S: SimState, I: Serialize>(
    h: &mut Host<S>,
    conn: &str,
    encoding: Encoding,
    seq: u64,
    input: I,
) {
    let frame = wire::encode_client(encoding, &SimClientMsg::Input(InputMsg { seq, input }));
    h.message(conn, frame.as_ref()).unwrap();
}

/// The messages `conn` received since the last call.
pub fn received<S: SimState, P: DeserializeOwned>(
    h: &mut Host<S>,
    conn: &str,
) -> Vec<SimServerMsg<P>> {
    h.take_sent(conn)
        .into_iter()
        .map(|f| {
            let enc = match f {
                Frame::Text(_) => Encoding::Json,
                Frame::Binary(_) => Encoding::Postcard,
            };
            wire::decode_server(enc, f.as_ref()).unwrap()
        })
        .collect()
}

/// The JSON frames `conn` received since the last call, as JSON.
pub fn json_frames<S: SimState>(h: &mut Host<S>, conn: &str) -> Vec<Json> {
    h.take_sent(conn)
        .into_iter()
        .map(|f| match f {
            Frame::Text(t) => serde_json::from_str(&t).unwrap(),
            Frame::Binary(_) => panic!("a binary frame on a JSON socket"),
        })
        .collect()
}

/// `GET` on the shard: its stats.
pub fn stats<S: SimState>(h: &mut Host<S>) -> Json {
    let r = h.request(Method::Get, "", Json::Null).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

/// The snapshots among `msgs`.
pub fn snapshots<P: Clone>(msgs: &[SimServerMsg<P>]) -> Vec<wire::SnapshotMsg<P>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimServerMsg::Snapshot(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The errors among `msgs`.
pub fn errors<P>(msgs: &[SimServerMsg<P>]) -> Vec<wire::SimErr> {
    msgs.iter()
        .filter_map(|m| match m {
            SimServerMsg::Err(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// The acks among `msgs`.
pub fn acks<P>(msgs: &[SimServerMsg<P>]) -> Vec<wire::Ack> {
    msgs.iter()
        .filter_map(|m| match m {
            SimServerMsg::Ack(a) => Some(a.clone()),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Arena: players on a plane, 20 Hz
// ---------------------------------------------------------------------------

/// How far a player sees.
pub const SIGHT: f64 = 10.0;

/// When set, the next `Boom` input panics (once).
pub static ARMED: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Cmd {
    Join,
    Move {
        dx: i64,
        dy: i64,
    },
    /// Recorded with its sender, to prove an input was applied.
    Mark(u64),
    /// The state refuses it (`Err`).
    Fail,
    /// `authorize_input` refuses it.
    Spam,
    Finish,
    /// Panics when [`ARMED`] is set.
    Boom,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Arena {
    pub players: BTreeMap<String, (i64, i64)>,
    /// `(subscriber, mark, tick)` in the order applied.
    pub marks: Vec<(String, u64, u64)>,
    pub ticks: u64,
    /// Mixed from every generator the engine handed out.
    pub noise: u64,
    pub finished: bool,
}

/// What a subscriber sees: itself and who is within [`SIGHT`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub me: Option<(i64, i64)>,
    pub near: Vec<String>,
    pub marks: usize,
}

impl SimState for Arena {
    type Input = Cmd;
    type Snapshot = View;
    type Error = String;

    fn config() -> SimConfig {
        SimConfig {
            tick_hz: 20,
            max_subscribers: 3,
            max_queued_inputs: 4,
            idle_ticks: 10,
            persist_every_ticks: 7,
            max_ticks_per_wake: 3,
            max_input_bytes: 256,
            max_log_inputs: 1_000,
            ..SimConfig::new("arena")
        }
    }

    fn new(_: &str) -> Self {
        Arena::default()
    }

    fn apply_input(&mut self, who: &str, cmd: Cmd, mut now: Now) -> Result<(), String> {
        self.noise = self.noise.rotate_left(7) ^ now.rng.next_u64();
        match cmd {
            Cmd::Join => {
                self.players.entry(who.to_owned()).or_insert((0, 0));
            }
            Cmd::Move { dx, dy } => {
                let p = self.players.entry(who.to_owned()).or_insert((0, 0));
                *p = (p.0 + dx, p.1 + dy);
            }
            Cmd::Mark(n) => self.marks.push((who.to_owned(), n, now.tick)),
            Cmd::Fail => return Err("fail was asked for".into()),
            Cmd::Spam => unreachable!("authorize_input refuses it"),
            Cmd::Finish => self.finished = true,
            Cmd::Boom => {
                if ARMED.swap(false, Ordering::SeqCst) {
                    panic!("boom (a test asked for it)");
                }
            }
        }
        Ok(())
    }

    fn tick(&mut self, dt: f64, mut step: Step) {
        assert_eq!(dt, 0.05);
        self.ticks += 1;
        assert_eq!(
            step.number, self.ticks,
            "ticks are numbered from 1, one by one"
        );
        self.noise = self.noise.rotate_left(3) ^ step.rng.next_u64();
    }

    fn snapshot(&self) -> View {
        View {
            me: None,
            near: self.players.keys().cloned().collect(),
            marks: self.marks.len(),
        }
    }

    fn snapshot_for(&self, who: &str) -> View {
        let me = self.players.get(who).copied();
        let near = match me {
            Some((x, y)) => self
                .players
                .iter()
                .filter(|(other, p)| {
                    other.as_str() != who
                        && within((x as f64, y as f64), (p.0 as f64, p.1 as f64), SIGHT)
                })
                .map(|(other, _)| other.clone())
                .collect(),
            None => Vec::new(),
        };
        View {
            me,
            near,
            marks: self.marks.len(),
        }
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    /// Connections (`c1`, …) and anonymous HTTP may act as themselves;
    /// any other subscriber must be the verified user (the default).
    fn authorize_subscribe(&self, who: &str, auth: &AuthContext) -> Result<(), String> {
        if is_connection_id(who) || who == "http" {
            Ok(())
        } else {
            default_authorize_subscribe(who, auth)
        }
    }

    fn authorize_input(&self, _: &str, _: &AuthContext, cmd: &Cmd) -> Result<(), String> {
        match cmd {
            Cmd::Spam => Err("no spam here".into()),
            _ => Ok(()),
        }
    }
}

/// An HTTP input as the anonymous caller.
pub fn post<S: SimState>(h: &mut Host<S>, body: Json) -> pylon_workers::host::Response {
    h.request(Method::Post, "", body).unwrap()
}

/// `{"move": …}` and friends, as JSON bodies.
pub fn cmd(c: &Cmd) -> Json {
    serde_json::to_value(c).unwrap()
}

pub fn mark(n: u64) -> Json {
    json!({ "Mark": n })
}
