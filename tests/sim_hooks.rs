//! Who may act as which subscriber: the default `authorize_subscribe`
//! (the verified user is the subscriber, or an admin), subscribers named
//! on the upgrade (`?subscriber=`) and on HTTP inputs (`?subscriber=`,
//! `?seq=`). The local host takes no query strings, so these drive the
//! host core directly, as the Worker's host does.

mod sim_support;

use std::future::Future;
use std::rc::Rc;

use pylon_workers::host::{Effect, HostCore, Method, Request, Response};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{close, Encoding};
use pylon_workers::sim::wire::{self, SimServerMsg};
use pylon_workers::sim::{Now, SimConfig, SimConn, SimShard, SimState, Step};
use pylon_workers::storage::SqliteConn;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sim_support::*;

/// A kind that keeps every default hook: a list of who sent what.
#[derive(Default, Serialize, Deserialize)]
struct Plain(Vec<(String, u32)>);

impl SimState for Plain {
    type Input = u32;
    type Snapshot = usize;
    type Error = String;
    fn config() -> SimConfig {
        SimConfig::new("plain")
    }
    fn new(_: &str) -> Self {
        Plain::default()
    }
    fn apply_input(&mut self, who: &str, n: u32, _: Now) -> Result<(), String> {
        self.0.push((who.to_owned(), n));
        Ok(())
    }
    fn tick(&mut self, _: f64, _: Step) {}
    fn snapshot(&self) -> usize {
        self.0.len()
    }
}

fn ready<F: Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a handler waited"),
    }
}

/// A connection's id, what it was sent, and its close code if closed.
type Upgraded<P> = (String, Vec<SimServerMsg<P>>, Option<u16>);

struct Core<S: SimState>(HostCore<Db, SimShard<S, Db>>);

impl<S: SimState> Core<S> {
    fn open(name: &str) -> Self {
        let db = Rc::new(SqliteConn::open_in_memory().unwrap());
        let (mut core, _) = HostCore::new(db);
        ready(core.open(Some(name), Vec::new(), app(), &|_| None, 0)).unwrap();
        Core(core)
    }

    fn upgrade(
        &mut self,
        caller: AuthContext,
        subscriber: Option<&str>,
    ) -> Result<Upgraded<S::Snapshot>, Response>
    where
        S::Snapshot: serde::de::DeserializeOwned,
    {
        let query = subscriber
            .map(|s| vec![("subscriber".to_owned(), s.to_owned())])
            .unwrap_or_default();
        let req = request(Method::Get, "ws", query, caller, Vec::new());
        let (conn, state): (String, SimConn) = self.0.accept(&req, Encoding::Json, 0)?;
        let fx = ready(self.0.connected(&conn, state, 0));
        let (msgs, closed) = sent_to(&conn, fx);
        Ok((conn, msgs, closed))
    }

    fn post(
        &mut self,
        caller: AuthContext,
        query: &[(&str, &str)],
        body: serde_json::Value,
    ) -> Response {
        let query = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = request(
            Method::Post,
            "",
            query,
            caller,
            body.to_string().into_bytes(),
        );
        ready(self.0.request(req, 0)).0
    }
}

fn request(
    method: Method,
    rest: &str,
    query: Vec<(String, String)>,
    caller: AuthContext,
    body: Vec<u8>,
) -> Request {
    Request {
        method,
        object: "hooks".into(),
        rest: rest.into(),
        query,
        caller,
        lease: Default::default(),
        body,
    }
}

/// What `conn` was sent among `fx`, and its close code if closed.
fn sent_to<P: serde::de::DeserializeOwned>(
    conn: &str,
    fx: Vec<Effect<SimConn>>,
) -> (Vec<SimServerMsg<P>>, Option<u16>) {
    let mut msgs = Vec::new();
    let mut closed = None;
    for e in fx {
        match e {
            Effect::Send { conns, frame } if conns.iter().any(|c| c == conn) => {
                msgs.push(wire::decode_server(Encoding::Json, frame.as_ref()).unwrap());
            }
            Effect::Close { conn: c, code, .. } if c == conn => closed = Some(code),
            _ => {}
        }
    }
    (msgs, closed)
}

#[test]
fn by_default_a_socket_acts_only_as_its_verified_user_or_for_an_admin() {
    let mut core = Core::<Plain>::open("plain");
    // Anonymous, acting as its connection: refused once the id exists.
    let (_, msgs, closed) = core.upgrade(AuthContext::anonymous(), None).unwrap();
    assert_eq!(closed, Some(close::FORBIDDEN));
    let e = errors(&msgs);
    assert_eq!(e[0].code.as_str(), "FORBIDDEN");
    assert!(
        e[0].reason
            .as_deref()
            .unwrap()
            .contains("not the verified user"),
        "{e:?}"
    );
    // Naming someone else: refused on the upgrade, with the reason.
    let r = core
        .upgrade(AuthContext::user("bob"), Some("alice"))
        .unwrap_err();
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert!(r.body["error"]["reason"]
        .as_str()
        .unwrap()
        .contains("alice"));
    // Naming oneself, or being an admin.
    let (conn, msgs, closed) = core
        .upgrade(AuthContext::user("alice"), Some("alice"))
        .unwrap();
    assert_eq!(closed, None);
    match &msgs[0] {
        SimServerMsg::Welcome(w) => assert_eq!(
            (w.subscriber.as_str(), w.conn.as_str()),
            ("alice", conn.as_str())
        ),
        m => panic!("{m:?}"),
    }
    let (_, _, closed) = core.upgrade(AuthContext::admin(), None).unwrap();
    assert_eq!(closed, None);
    let (_, _, closed) = core.upgrade(AuthContext::admin(), Some("anyone")).unwrap();
    assert_eq!(closed, None);
    // A subscriber id is 1 to 128 bytes without control characters.
    for bad in ["", "a\nb", &"x".repeat(129), "c12"] {
        let r = core.upgrade(AuthContext::admin(), Some(bad)).unwrap_err();
        assert_eq!(r.status, 400, "{bad:?}");
    }
}

#[test]
fn two_sockets_of_one_subscriber_share_its_seqs_and_snapshots() {
    let mut core = Core::<Plain>::open("shared");
    let (s1, _, _) = core.upgrade(AuthContext::user("ada"), Some("ada")).unwrap();
    let (s2, _, _) = core.upgrade(AuthContext::user("ada"), Some("ada")).unwrap();
    let frame = wire::encode_client(
        Encoding::Json,
        &wire::SimClientMsg::Input(wire::InputMsg {
            seq: 1,
            input: 9u32,
        }),
    );
    let fx = ready(core.0.message(&s1, frame.as_ref(), 0));
    let (m2, _) = sent_to::<usize>(&s2, fx);
    assert!(
        matches!(&m2[..], [SimServerMsg::Snapshot(s)] if s.acked == 1 && s.snapshot == 1),
        "{m2:?}"
    );
    // The same seq from the other socket is a duplicate.
    let fx = ready(core.0.message(&s2, frame.as_ref(), 0));
    let (m2, _) = sent_to::<usize>(&s2, fx);
    assert!(matches!(&m2[..], [SimServerMsg::Ack(a)] if a.dup), "{m2:?}");
}

#[test]
fn http_inputs_name_their_subscriber_and_seq() {
    let mut core = Core::<Plain>::open("http");
    // Anonymous HTTP acts as `http`, which the default refuses.
    let r = core.post(AuthContext::anonymous(), &[], json!(1));
    assert_eq!(r.status, 403, "{}", r.body);
    // A signed-in caller acts as itself by default.
    let r = core.post(AuthContext::user("bo"), &[], json!(1));
    assert_eq!(
        (
            r.status,
            r.body["subscriber"].as_str(),
            r.body["seq"].as_u64()
        ),
        (200, Some("bo"), Some(1))
    );
    // Or names itself, with its own seqs; a seq taken is a duplicate.
    let r = core.post(
        AuthContext::user("bo"),
        &[("subscriber", "bo"), ("seq", "10")],
        json!(2),
    );
    assert_eq!(
        (r.body["seq"].as_u64(), r.body["dup"].as_bool()),
        (Some(10), Some(false))
    );
    let r = core.post(AuthContext::user("bo"), &[("seq", "10")], json!(3));
    assert_eq!((r.status, r.body["dup"].as_bool()), (200, Some(true)));
    let r = core.post(AuthContext::user("bo"), &[], json!(4));
    assert_eq!(r.body["seq"], 11, "the next seq after the last taken");
    // Naming someone else is refused; so is a seq that is not one.
    let r = core.post(AuthContext::user("bo"), &[("subscriber", "cy")], json!(1));
    assert_eq!(r.status, 403);
    for seq in ["0", "-1", "x", "9007199254740992"] {
        let r = core.post(AuthContext::user("bo"), &[("seq", seq)], json!(1));
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("BAD_INPUT")),
            "{seq}"
        );
    }
    let applied = &core.0.object().unwrap().state().0;
    assert_eq!(
        applied,
        &[("bo".to_owned(), 1), ("bo".into(), 2), ("bo".into(), 4)]
    );
}
