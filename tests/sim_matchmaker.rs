//! Matchmaking queues on a local host with a virtual clock: pairs formed
//! by the rules get a fresh shard id each, players learn it by polling or
//! over their socket, leaving and timeouts work, the queue survives
//! eviction, and an empty queue has no alarm.

mod sim_support;

use std::future::Future;
use std::rc::Rc;

use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{Effect, HostCore, Method, Request, Response};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::Encoding;
use pylon_workers::sim::matchmaking::{
    decode_ticket_msg, MatchConfig, MatchRules, Matchmaker, Pairs, Status, TicketConn, Waiting,
};
use pylon_workers::storage::SqliteConn;
use serde_json::{json, Value as Json};
use sim_support::{app, Db};

type Queue<M> = LocalHost<Db, Matchmaker<M, Db>>;

fn queue<M: MatchRules>(name: &str) -> Queue<M> {
    LocalHost::open(Rc::new(SqliteConn::open_in_memory().unwrap()), name, app()).unwrap()
}

fn enqueue<M: MatchRules>(q: &mut Queue<M>, who: AuthContext, criteria: Json) -> Response {
    q.request_as(Method::Post, "", criteria, who).unwrap()
}

fn poll<M: MatchRules>(q: &mut Queue<M>, who: AuthContext, ticket: &str) -> Response {
    q.request_as(Method::Get, &format!("tickets/{ticket}"), Json::Null, who)
        .unwrap()
}

fn anon() -> AuthContext {
    AuthContext::anonymous()
}

#[test]
fn players_who_ask_for_the_same_mode_are_paired_into_a_fresh_shard() {
    let mut q = queue::<Pairs>("duels");
    let a = enqueue(&mut q, anon(), json!({"mode": "duel"})).body;
    assert_eq!(
        (a["status"].as_str(), a["kind"].as_str()),
        (Some("waiting"), Some("plane"))
    );
    let b = enqueue(&mut q, anon(), json!({"mode": "race"})).body;
    let c = enqueue(&mut q, anon(), json!({"mode": "duel"})).body;
    assert_eq!(c["status"], "assigned", "{c}");
    assert_eq!(c["sim"], "duels-1");
    let ta = a["ticket"].as_str().unwrap();
    assert_eq!(c["players"], json!([a["player"], c["player"]]));
    // The first learns it by polling.
    let a2 = poll(&mut q, anon(), ta).body;
    assert_eq!(
        (a2["status"].as_str(), a2["sim"].as_str()),
        (Some("assigned"), Some("duels-1"))
    );
    // The next pair gets the next shard, across an eviction.
    q.evict();
    let d = enqueue(&mut q, anon(), json!({"mode": "race"})).body;
    assert_eq!(
        (d["sim"].as_str(), d["players"][0].as_str()),
        (Some("duels-2"), b["player"].as_str())
    );
    let s = q.request(Method::Get, "", Json::Null).unwrap().body;
    assert_eq!(
        (
            s["assigned"].as_i64(),
            s["waiting"].as_i64(),
            s["groups"].as_i64()
        ),
        (Some(4), Some(0), Some(2))
    );
}

#[test]
fn a_signed_in_player_has_one_ticket_and_only_it_may_see_it() {
    let mut q = queue::<Pairs>("signed");
    let alice = || AuthContext::user("alice");
    let t = enqueue(&mut q, alice(), json!({"mode": "duel"})).body;
    assert_eq!(t["player"], "alice");
    let again = enqueue(&mut q, alice(), json!({"mode": "duel"})).body;
    assert_eq!(
        (again["ticket"].clone(), again["dup"].as_bool()),
        (t["ticket"].clone(), Some(true))
    );
    let id = t["ticket"].as_str().unwrap();
    assert_eq!(poll(&mut q, AuthContext::user("bob"), id).status, 403);
    assert_eq!(poll(&mut q, anon(), id).status, 403);
    assert_eq!(poll(&mut q, AuthContext::admin(), id).status, 200);
    let left = q
        .request_as(
            Method::Delete,
            &format!("tickets/{id}"),
            Json::Null,
            AuthContext::user("bob"),
        )
        .unwrap();
    assert_eq!(left.status, 403);
    assert_eq!(poll(&mut q, anon(), "t99-nothing").status, 404);
}

#[test]
fn leaving_and_timeouts_and_an_empty_queue_rests() {
    let mut q = queue::<Pairs>("timeouts");
    let b = enqueue(&mut q, anon(), json!({"mode": "race"})).body;
    let tb = b["ticket"].as_str().unwrap().to_owned();
    assert_eq!(q.alarm(), Some(60_000), "the ticket's deadline");
    let r = q
        .request(Method::Delete, &format!("tickets/{tb}"), Json::Null)
        .unwrap();
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("left")));
    let r = q
        .request(Method::Delete, &format!("tickets/{tb}"), Json::Null)
        .unwrap();
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (409, Some("NOT_WAITING"))
    );
    // One who left is not matched.
    let d = enqueue(&mut q, anon(), json!({"mode": "race"})).body;
    assert_eq!(d["status"], "waiting");
    let td = d["ticket"].as_str().unwrap().to_owned();
    q.advance(59_999).unwrap();
    assert_eq!(poll(&mut q, anon(), &td).body["status"], "waiting");
    q.advance(1).unwrap();
    assert_eq!(poll(&mut q, anon(), &td).body["status"], "expired");
    // Settled tickets are kept ten minutes, then forgotten: no alarm left.
    q.advance(600_000).unwrap();
    assert_eq!(poll(&mut q, anon(), &td).status, 404);
    assert_eq!(poll(&mut q, anon(), &tb).status, 404);
    assert_eq!(q.alarm(), None);
    let s = q.request(Method::Get, "", Json::Null).unwrap().body;
    assert_eq!(
        (s["waiting"].as_i64(), s["tickets"].as_i64()),
        (Some(0), Some(2))
    );
}

#[test]
fn bad_criteria_are_refused() {
    let mut q = queue::<Pairs>("bad");
    for bad in [
        json!({"mode": 3}),
        json!({"mode": "duel", "x": 1}),
        json!("duel"),
    ] {
        let r = enqueue(&mut q, anon(), bad.clone());
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (400, Some("BAD_CRITERIA")),
            "{bad}"
        );
    }
    let r = enqueue(&mut q, anon(), json!({"mode": "x".repeat(5_000)}));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (413, Some("CRITERIA_TOO_LARGE"))
    );
    assert_eq!(q.alarm(), None, "nothing waits");
}

/// Groups of three, relaxed to two after five seconds; two may wait.
struct Trios;

impl MatchRules for Trios {
    type Criteria = ();
    fn config() -> MatchConfig {
        MatchConfig {
            max_waiting: 2,
            rematch_ms: 1_000,
            ..MatchConfig::new("trios", "arena")
        }
    }
    fn new(_: &str) -> Self {
        Trios
    }
    fn form_groups(&self, waiting: &[Waiting<()>], now_ms: i64) -> Vec<Vec<usize>> {
        let relaxed = waiting
            .first()
            .is_some_and(|w| now_ms - w.since_ms >= 5_000);
        match waiting.len() {
            n if n >= 3 => vec![vec![0, 1, 2]],
            2 if relaxed => vec![vec![0, 1]],
            // A void group (an index twice): ignored, they wait on.
            2 => vec![vec![0, 0]],
            _ => Vec::new(),
        }
    }
}

#[test]
fn rules_that_relax_with_time_are_asked_again_and_a_full_queue_refuses() {
    let mut q = queue::<Trios>("trios");
    let a = enqueue(&mut q, anon(), json!(null)).body;
    enqueue(&mut q, anon(), json!(null));
    let r = enqueue(&mut q, anon(), json!(null));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (503, Some("QUEUE_FULL"))
    );
    assert!(q.log.iter().any(|l| l.contains("void")), "{:?}", q.log);
    q.advance(4_000).unwrap();
    let ta = a["ticket"].as_str().unwrap();
    assert_eq!(poll(&mut q, anon(), ta).body["status"], "waiting");
    q.advance(1_000).unwrap();
    let p = poll(&mut q, anon(), ta).body;
    assert_eq!(
        (p["status"].as_str(), p["sim"].as_str(), p["kind"].as_str()),
        (Some("assigned"), Some("trios-1"), Some("arena"))
    );
}

// Sockets take their ticket as a query parameter, which the local host
// does not pass: these drive the host core, as the Worker's host does.

fn ready<F: Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a handler waited"),
    }
}

fn request(
    method: Method,
    rest: &str,
    query: &[(&str, &str)],
    caller: AuthContext,
    body: Json,
) -> Request {
    Request {
        method,
        object: "sockets".into(),
        rest: rest.into(),
        query: query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        caller,
        lease: Default::default(),
        body: if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        },
    }
}

#[test]
fn a_waiting_player_hears_its_assignment_over_its_socket() {
    let (mut core, _) =
        HostCore::<Db, Matchmaker<Pairs, Db>>::new(Rc::new(SqliteConn::open_in_memory().unwrap()));
    ready(core.open(Some("sockets"), Vec::new(), app(), &|_| None, 0)).unwrap();
    let post = |core: &mut HostCore<Db, Matchmaker<Pairs, Db>>, who: AuthContext| {
        let req = request(Method::Post, "", &[], who, json!({"mode": "duel"}));
        ready(core.request(req, 0))
    };
    let (r, _) = post(&mut core, AuthContext::user("ann"));
    let ticket = r.body["ticket"].as_str().unwrap().to_owned();
    // Someone else's ticket, or none: refused.
    for (who, t, status) in [
        (AuthContext::user("bo"), ticket.as_str(), 403),
        (anon(), "t9-x", 404),
    ] {
        let req = request(Method::Get, "ws", &[("ticket", t)], who, Json::Null);
        assert_eq!(
            core.accept(&req, Encoding::Json, 0).unwrap_err().status,
            status
        );
    }
    let req = request(
        Method::Get,
        "ws",
        &[("ticket", &ticket)],
        AuthContext::user("ann"),
        Json::Null,
    );
    let (conn, state): (String, TicketConn) = core.accept(&req, Encoding::Postcard, 0).unwrap();
    let fx = ready(core.connected(&conn, state, 0));
    let sent: Vec<_> = fx
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conns, frame } if conns.contains(&conn) => {
                Some(decode_ticket_msg(Encoding::Postcard, frame.as_ref()).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent[0].status, Status::Waiting);
    // A second player arrives: the first hears where to go, and its socket closes.
    let (r, fx) = post(&mut core, AuthContext::user("cy"));
    assert_eq!(r.body["status"], "assigned");
    let mut heard = None;
    let mut closed = false;
    for e in fx {
        match e {
            Effect::Send { conns, frame } if conns.contains(&conn) => {
                heard = Some(decode_ticket_msg(Encoding::Postcard, frame.as_ref()).unwrap());
            }
            Effect::Close { conn: c, code, .. } if c == conn => closed = code == 1000,
            _ => {}
        }
    }
    let heard = heard.expect("the assignment");
    assert_eq!(
        (heard.status, heard.sim.as_deref()),
        (Status::Assigned, Some("sockets-1"))
    );
    assert_eq!(heard.players, ["ann", "cy"]);
    assert!(closed);
}
