//! A workflow instance (`WorkflowInstance`) on a local host over real
//! SQLite, with a virtual clock and the app's functions answered by a
//! table in the test, the way a shard answers them: each function run is
//! counted per op id, and a run whose op id already committed is answered
//! with its first result without being applied again. A crash (`kill -9`)
//! is a panic inside a function run: the host is dropped with the call out,
//! and a new host opens the same storage.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use pylon_workers::app::App;
use pylon_workers::functions::{FnError, FunctionRun};
use pylon_workers::host::local::LocalHost;
use pylon_workers::host::{IoCall, IoOutcome, Method, Request, Response};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::ErrorCode;
use pylon_workers::storage::SqliteConn;
use pylon_workers::value::Value;
use pylon_workers::workflows::{
    WorkflowInstance, WorkflowSummary, MAX_INPUT_BYTES, REPORT_RETRY_MS,
};
use serde_json::{json, Value as Json};

const MANIFEST: &str = r#"{"entities": [], "workflows": [
  {"name": "onboard", "start": "signedIn", "steps": [
    {"name": "account", "run": "createAccount"},
    {"name": "cooloff", "sleepMs": 2000},
    {"name": "approval", "waitForEvent": "approved", "timeoutMs": 60000},
    {"name": "welcome", "run": "sendWelcome", "retries": 2, "backoffMs": 100}
  ]},
  {"name": "audit", "steps": [{"name": "log", "run": "createAccount"}]}
]}"#;

const SLEEP_MS: i64 = 2000;
const TIMEOUT_MS: i64 = 60_000;
const BACKOFF_MS: i64 = 100;

type Db = Rc<SqliteConn>;
type Host = LocalHost<Db, WorkflowInstance<Db>>;

fn app() -> &'static App {
    static APP: std::sync::OnceLock<App> = std::sync::OnceLock::new();
    APP.get_or_init(|| App::new(MANIFEST))
}

/// The app's functions, as the test's shard runs them.
#[derive(Default)]
struct Fns {
    /// Runs asked for, per op id.
    calls: BTreeMap<String, u32>,
    /// Runs that did their work, per op id (a rerun of a committed op is not).
    applied: BTreeMap<String, u32>,
    /// The first result of each op id that succeeded.
    committed: BTreeMap<String, Value>,
    /// Every run, in order.
    runs: Vec<FunctionRun>,
    /// `sendWelcome` fails this many more times, with this code.
    welcome_fails: u32,
    welcome_error: Option<ErrorCode>,
    /// The op whose run is the last thing the process does.
    crash_after: Option<String>,
    /// Reports to the jobs ledger that got through, in order.
    reports: Vec<WorkflowSummary>,
    /// The ledger refuses this many more reports.
    report_fails: u32,
}

impl Fns {
    fn calls(&self, op: &str) -> u32 {
        self.calls.get(op).copied().unwrap_or(0)
    }

    fn applied(&self, op: &str) -> u32 {
        self.applied.get(op).copied().unwrap_or(0)
    }

    fn run(&mut self, run: &FunctionRun) -> Result<Value, FnError> {
        let op = run.op.clone().expect("every step has an op id");
        *self.calls.entry(op.clone()).or_default() += 1;
        self.runs.push(run.clone());
        if let Some(first) = self.committed.get(&op) {
            return Ok(first.clone());
        }
        let args = Json::from(run.args.clone());
        let result = match run.name.as_str() {
            "createAccount" if args["input"]["huge"] == true => {
                Ok(json!({"blob": "x".repeat(70 * 1024)}))
            }
            "createAccount" => Ok(
                json!({"account": format!("acct-{}", args["input"]["email"].as_str().unwrap_or("?"))}),
            ),
            "sendWelcome" if self.welcome_fails > 0 => {
                self.welcome_fails -= 1;
                let code = self.welcome_error.unwrap_or(ErrorCode::FunctionFailed);
                Err(FnError::new(code, "the mail service said no"))
            }
            "sendWelcome" => Ok(json!({
                "to": args["steps"]["account"]["account"],
                "approvedBy": args["event"]["by"],
            })),
            other => Err(FnError::unknown(other)),
        };
        if let Ok(v) = &result {
            *self.applied.entry(op.clone()).or_default() += 1;
            self.committed.insert(op.clone(), Value::from(v.clone()));
        }
        if self.crash_after.as_deref() == Some(op.as_str()) {
            self.crash_after = None;
            panic!("the process is killed with {op} applied and its outcome not delivered");
        }
        result.map(Value::from)
    }

    fn report(&mut self, s: &WorkflowSummary) -> Result<(), String> {
        if self.report_fails > 0 {
            self.report_fails -= 1;
            return Err("ledger".into());
        }
        self.reports.push(s.clone());
        Ok(())
    }

    /// `(status, step)` of each report that got through.
    fn reported(&self) -> Vec<(String, u32)> {
        self.reports
            .iter()
            .map(|s| (s.status.clone(), s.step))
            .collect()
    }
}

struct World {
    db: Db,
    id: String,
    fns: Rc<RefCell<Fns>>,
    host: Host,
}

fn answer(fns: Rc<RefCell<Fns>>) -> impl FnMut(&IoCall) -> IoOutcome {
    move |call| match call {
        IoCall::RunFunction(run) => IoOutcome::Ran(fns.borrow_mut().run(run)),
        IoCall::ReportWorkflow(s) => IoOutcome::Applied(fns.borrow_mut().report(s)),
        other => panic!("a workflow asked for {other:?}"),
    }
}

fn world(id: &str) -> World {
    let db: Db = Rc::new(SqliteConn::open_in_memory().unwrap());
    let fns = Rc::new(RefCell::new(Fns::default()));
    let mut host = Host::open(db.clone(), id, app()).unwrap();
    host.on_io(answer(fns.clone()));
    World {
        db,
        id: id.into(),
        fns,
        host,
    }
}

fn ann() -> AuthContext {
    AuthContext::user("ann")
}

impl World {
    fn op(&self, step: u32) -> String {
        format!("wf:{}:{step}", self.id)
    }

    fn call(&mut self, method: Method, rest: &str, body: Json, who: AuthContext) -> Response {
        self.host.request_as(method, rest, body, who).unwrap()
    }

    fn start(&mut self) -> Response {
        let body = json!({"workflow": "onboard", "input": {"email": "ann@x"}, "shard": "board"});
        self.call(Method::Post, "start", body, ann())
    }

    fn get_status(&mut self) -> u16 {
        self.call(Method::Get, "", json!(null), ann()).status
    }

    fn get(&mut self) -> Json {
        let r = self.call(Method::Get, "", json!(null), ann());
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }

    fn event(&mut self, name: &str, payload: Json) -> Response {
        self.call(
            Method::Post,
            "events",
            json!({"name": name, "payload": payload}),
            ann(),
        )
    }

    fn post(&mut self, rest: &str) -> Response {
        self.call(Method::Post, rest, json!(null), ann())
    }

    /// Started, slept, and waiting for `approved`.
    fn at_the_wait(&mut self) {
        assert_eq!(self.start().status, 201);
        self.host.advance(SLEEP_MS).unwrap();
        assert_eq!(self.get()["status"], "waiting");
    }

    /// The process dies; a new one opens the same storage.
    fn restart(&mut self) {
        let mut host = Host::open(self.db.clone(), &self.id, app()).unwrap();
        host.on_io(answer(self.fns.clone()));
        self.host = host;
    }
}

fn code(r: &Response) -> &str {
    r.body["error"]["code"].as_str().unwrap_or("")
}

#[test]
fn a_workflow_with_a_sleep_and_an_event_runs_to_completed_with_its_history() {
    let mut w = world("wf-1");
    let r = w.start();
    assert_eq!(r.status, 201, "{}", r.body);
    // The answer shows the first step's call out ...
    assert_eq!(
        (r.body["status"].as_str(), r.body["step"].as_u64()),
        (Some("running"), Some(0))
    );
    assert_eq!(r.body["history"][0]["attempts"], 1);
    // ... which the host performs right after: the instance sleeps.
    let s = &w.get();
    assert_eq!(s["id"], "wf-1");
    assert_eq!(s["workflow"], "onboard");
    assert_eq!(
        (s["status"].as_str(), s["step"].as_u64()),
        (Some("sleeping"), Some(1))
    );
    assert_eq!(s["stepName"], "cooloff");
    assert_eq!(s["startedBy"], "ann");
    assert_eq!(s["wakeAtMs"], SLEEP_MS);
    assert_eq!(s["steps"], json!({"account": {"account": "acct-ann@x"}}));
    {
        let fns = w.fns.borrow();
        let run = &fns.runs[0];
        assert_eq!(run.name, "createAccount");
        assert_eq!(run.caller, ann(), "the step runs as its starter");
        assert_eq!(run.shard.as_deref(), Some("board"));
        assert_eq!(run.op.as_deref(), Some("wf:wf-1:0"));
        assert_eq!(
            Json::from(run.args.clone()),
            json!({"input": {"email": "ann@x"}, "steps": {}, "event": null})
        );
    }

    w.host.advance(SLEEP_MS - 1).unwrap();
    assert_eq!(w.get()["status"], "sleeping");
    w.host.advance(1).unwrap();
    let s = w.get();
    assert_eq!(
        (s["status"].as_str(), s["step"].as_u64()),
        (Some("waiting"), Some(2))
    );
    assert_eq!(s["waitingFor"], "approved");
    assert_eq!(s["wakeAtMs"], SLEEP_MS + TIMEOUT_MS);

    w.host.advance(500).unwrap();
    let r = w.event("approved", json!({"by": "boss"}));
    assert_eq!(r.status, 200, "the waiting step took it: {}", r.body);
    assert_eq!(r.body["stepName"], "welcome");
    let s = &w.get();
    assert_eq!(s["status"], "completed");
    assert_eq!(s["step"], 4);
    assert_eq!(s["stepName"], Json::Null);
    let welcome = json!({"to": "acct-ann@x", "approvedBy": "boss"});
    assert_eq!(s["output"], welcome, "the output is the last step's result");
    assert_eq!(s["error"], Json::Null);
    assert_eq!(
        s["steps"],
        json!({"account": {"account": "acct-ann@x"}, "cooloff": null,
               "approval": {"by": "boss"}, "welcome": welcome})
    );
    assert!(s.get("waitingFor").is_none() && s.get("wakeAtMs").is_none());
    let end = SLEEP_MS + 500;
    assert_eq!(
        s["history"],
        json!([
            {"step": 0, "name": "account", "kind": "run", "status": "completed", "attempts": 1,
             "result": {"account": "acct-ann@x"}, "startedMs": 0, "finishedMs": 0},
            {"step": 1, "name": "cooloff", "kind": "sleep", "status": "completed", "attempts": 0,
             "result": null, "startedMs": 0, "finishedMs": SLEEP_MS},
            {"step": 2, "name": "approval", "kind": "waitForEvent", "status": "completed",
             "attempts": 0, "result": {"by": "boss"}, "startedMs": SLEEP_MS, "finishedMs": end},
            {"step": 3, "name": "welcome", "kind": "run", "status": "completed", "attempts": 1,
             "result": welcome, "startedMs": end, "finishedMs": end},
        ])
    );
    assert_eq!(
        (s["createdMs"].as_i64(), s["updatedMs"].as_i64()),
        (Some(0), Some(end))
    );

    let fns = w.fns.borrow();
    assert_eq!(
        fns.reported(),
        [
            ("running", 0),
            ("sleeping", 1),
            ("waiting", 2),
            ("running", 3),
            ("completed", 4)
        ]
        .map(|(s, n)| (s.to_string(), n))
        .to_vec(),
        "each change of status or step is reported"
    );
    assert_eq!(
        fns.reports.last().unwrap().started_by.as_deref(),
        Some("ann")
    );
    drop(fns);
    assert_eq!(w.host.alarm(), None, "a finished instance keeps no timer");
    let r = w.event("approved", json!(1));
    assert_eq!((r.status, code(&r)), (409, "WORKFLOW_FINISHED"));
}

#[test]
fn a_failing_step_retries_with_backoff_then_fails() {
    let mut w = world("wf-1");
    w.fns.borrow_mut().welcome_fails = 99;
    w.at_the_wait();
    w.event("approved", json!({"by": "boss"}));
    let s = &w.get();
    assert_eq!(s["status"], "running", "{s}");
    let first_try = SLEEP_MS;
    assert_eq!(s["wakeAtMs"], first_try + BACKOFF_MS);
    let rec = &s["history"][3];
    assert_eq!(
        (rec["status"].as_str(), rec["attempts"].as_u64()),
        (Some("running"), Some(1))
    );
    assert_eq!(rec["error"]["code"], "FUNCTION_FAILED");
    let op = w.op(3);
    assert_eq!(w.fns.borrow().calls(&op), 1);

    w.host.advance(BACKOFF_MS - 1).unwrap();
    assert_eq!(
        w.fns.borrow().calls(&op),
        1,
        "not before the backoff is over"
    );
    w.host.advance(1).unwrap();
    assert_eq!(w.fns.borrow().calls(&op), 2);
    let s = w.get();
    assert_eq!(
        s["wakeAtMs"],
        first_try + BACKOFF_MS + 2 * BACKOFF_MS,
        "doubled"
    );
    assert_eq!(s["history"][3]["attempts"], 2);
    w.host.advance(2 * BACKOFF_MS).unwrap();
    let s = w.get();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["error"]["code"], "FUNCTION_FAILED");
    assert_eq!(s["step"], 3);
    assert_eq!(s["history"][3]["status"], "failed");
    assert_eq!(s["history"][3]["attempts"], 3);
    assert_eq!(
        w.fns.borrow().calls(&op),
        3,
        "the first run and two retries"
    );
    assert_eq!(w.host.alarm(), None);
    w.host.advance(60_000).unwrap();
    assert_eq!(w.fns.borrow().calls(&op), 3, "nothing runs after it failed");
    let r = w.post("cancel");
    assert_eq!((r.status, code(&r)), (409, "WORKFLOW_FINISHED"));

    // UNAVAILABLE (the function could not be reached) is retried the same
    // way and counts; a step that then succeeds completes the workflow.
    let mut w = world("wf-2");
    {
        let mut fns = w.fns.borrow_mut();
        fns.welcome_fails = 2;
        fns.welcome_error = Some(ErrorCode::Unavailable);
    }
    w.at_the_wait();
    w.event("approved", json!({"by": "boss"}));
    assert_eq!(w.get()["history"][3]["error"]["code"], "UNAVAILABLE");
    w.host.advance(BACKOFF_MS + 2 * BACKOFF_MS).unwrap();
    let s = w.get();
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(s["history"][3]["attempts"], 3);
    assert_eq!(w.fns.borrow().calls(&w.op(3)), 3);
}

#[test]
fn an_event_sent_before_its_wait_is_kept_and_taken_at_once() {
    let mut w = world("wf-1");
    w.start();
    let r = w.event("approved", json!({"by": "early"}));
    assert_eq!(r.status, 202, "kept: {}", r.body);
    assert_eq!(r.body["status"], "sleeping");
    assert_eq!(w.event("unrelated", json!(1)).status, 202);
    w.host.advance(SLEEP_MS).unwrap();
    let s = w.get();
    assert_eq!(
        s["status"], "completed",
        "the wait took the kept event: {s}"
    );
    assert_eq!(s["history"][2]["result"], json!({"by": "early"}));
    assert_eq!(
        (
            s["history"][2]["startedMs"].as_i64(),
            s["history"][2]["finishedMs"].as_i64()
        ),
        (Some(SLEEP_MS), Some(SLEEP_MS))
    );
    assert_eq!(
        s["output"]["approvedBy"], "early",
        "the next step saw it as `event`"
    );

    // At most 100 kept per instance.
    let mut w = world("wf-2");
    w.start();
    for n in 0..100 {
        assert_eq!(w.event("other", json!(n)).status, 202, "event {n}");
    }
    let r = w.event("other", json!(100));
    assert_eq!((r.status, code(&r)), (429, "TOO_MANY_EVENTS"));
    w.host.advance(SLEEP_MS).unwrap();
    let r = w.event("approved", json!({"by": "boss"}));
    assert_eq!(r.status, 200, "a waited-for event is never refused");
    assert_eq!(w.get()["status"], "completed");
}

#[test]
fn a_wait_that_times_out_fails_the_workflow() {
    let mut w = world("wf-1");
    w.at_the_wait();
    w.host.advance(TIMEOUT_MS - 1).unwrap();
    assert_eq!(w.get()["status"], "waiting");
    w.host.advance(1).unwrap();
    let s = w.get();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["error"]["code"], "EVENT_TIMEOUT");
    assert_eq!(s["step"], 2);
    assert_eq!(s["history"][2]["status"], "failed");
    assert_eq!(s["history"][2]["finishedMs"], SLEEP_MS + TIMEOUT_MS);
    assert_eq!(w.fns.borrow().calls(&w.op(3)), 0);
    assert_eq!(w.host.alarm(), None);
}

#[test]
fn cancel_stops_it_and_clears_its_timers() {
    let mut w = world("wf-1");
    w.start();
    assert!(w.host.alarm().is_some());
    let r = w.post("cancel");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "cancelled");
    assert_eq!(r.body["history"][1]["status"], "cancelled");
    assert_eq!(w.host.alarm(), None, "no timer left");
    w.host.advance(TIMEOUT_MS * 2).unwrap();
    assert_eq!(w.get()["status"], "cancelled");
    for (rest, want) in [("cancel", "WORKFLOW_FINISHED"), ("advance", "NOT_WAITING")] {
        let r = w.post(rest);
        assert_eq!((r.status, code(&r)), (409, want), "{rest}");
    }
    let r = w.event("approved", json!(null));
    assert_eq!((r.status, code(&r)), (409, "WORKFLOW_FINISHED"));

    // Cancelled between two attempts: the retry never runs.
    let mut w = world("wf-2");
    w.fns.borrow_mut().welcome_fails = 99;
    w.at_the_wait();
    w.event("approved", json!({"by": "boss"}));
    assert_eq!(w.fns.borrow().calls(&w.op(3)), 1);
    assert_eq!(w.post("cancel").status, 200);
    w.host.advance(TIMEOUT_MS).unwrap();
    assert_eq!(w.fns.borrow().calls(&w.op(3)), 1);
    let last = w.fns.borrow().reports.last().cloned().unwrap();
    assert_eq!((last.status.as_str(), last.step), ("cancelled", 3));
}

#[test]
fn advance_ends_a_sleep_or_a_wait_now() {
    let mut w = world("wf-1");
    w.fns.borrow_mut().welcome_fails = 1;
    w.start();
    w.host.advance(10).unwrap();
    let r = w.post("advance");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["status"], "waiting");
    assert_eq!(r.body["history"][1]["finishedMs"], 10);
    let r = w.post("advance");
    // The wait ended with null; the welcome step failed once and backs off.
    assert_eq!(r.body["history"][2]["result"], Json::Null);
    assert_eq!(r.body["status"], "running");
    let r = w.post("advance");
    assert_eq!(
        (r.status, code(&r)),
        (409, "NOT_WAITING"),
        "a backoff is not a wait"
    );
    w.host.advance(BACKOFF_MS).unwrap();
    let s = w.get();
    assert_eq!(s["status"], "completed");
    assert_eq!(s["output"]["approvedBy"], Json::Null, "no event was taken");
    assert_eq!(
        w.host.alarm(),
        None,
        "the sleep's and the wait's timers are gone"
    );
    let r = w.post("advance");
    assert_eq!((r.status, code(&r)), (409, "NOT_WAITING"));
}

#[test]
fn only_its_starter_or_an_admin_sees_it() {
    let mut w = world("wf-1");
    let never = w.call(Method::Get, "", json!(null), ann());
    assert_eq!((never.status, code(&never)), (404, "WORKFLOW_NOT_FOUND"));
    for rest in ["events", "cancel", "advance"] {
        let r = w.call(Method::Post, rest, json!({"name": "approved"}), ann());
        assert_eq!((r.status, code(&r)), (404, "WORKFLOW_NOT_FOUND"), "{rest}");
    }
    w.start();
    let bob = AuthContext::user("bob");
    for who in [bob.clone(), AuthContext::anonymous()] {
        let r = w.call(Method::Get, "", json!(null), who.clone());
        assert_eq!(r.body, never.body, "the same answer as for no instance");
        for rest in ["events", "cancel", "advance"] {
            let r = w.call(Method::Post, rest, json!({"name": "approved"}), who.clone());
            assert_eq!((r.status, code(&r)), (404, "WORKFLOW_NOT_FOUND"), "{rest}");
        }
    }
    assert_eq!(w.get()["status"], "sleeping", "bob's cancel did nothing");
    let r = w.call(Method::Get, "", json!(null), AuthContext::admin());
    assert_eq!((r.status, r.body["startedBy"].as_str()), (200, Some("ann")));
    let body = json!({"workflow": "onboard", "input": {"email": "ann@x"}, "shard": "board"});
    let r = w.call(Method::Post, "start", body, bob);
    assert_eq!(
        (r.status, code(&r)),
        (409, "WORKFLOW_EXISTS"),
        "not bob's retry to make"
    );

    // Who may start: `audit` is for admins only.
    let mut w = world("wf-2");
    let r = w.call(Method::Post, "start", json!({"workflow": "audit"}), ann());
    assert_eq!((r.status, code(&r)), (403, "FORBIDDEN"));
    let r = w.call(
        Method::Post,
        "start",
        json!({"workflow": "audit"}),
        AuthContext::admin(),
    );
    assert_eq!(r.status, 201);
    let r = w.call(Method::Get, "", json!(null), AuthContext::admin());
    assert_eq!(r.body["status"], "completed");
    assert_eq!(r.body["startedBy"], Json::Null);
}

#[test]
fn a_restart_mid_sleep_or_mid_step_resumes_without_running_a_finished_step_again() {
    // Evicted while sleeping: the alarm and storage remain.
    let mut w = world("wf-1");
    w.start();
    w.host.evict();
    w.host.advance(SLEEP_MS).unwrap();
    assert_eq!(w.get()["status"], "waiting");
    w.host.evict();
    w.event("approved", json!({"by": "boss"}));
    assert_eq!(w.get()["status"], "completed");
    let fns = w.fns.borrow();
    assert_eq!((fns.calls(&w.op(0)), fns.calls(&w.op(3))), (1, 1));
    drop(fns);

    // Killed while sleeping: a new process finds the timer in storage.
    let mut w = world("wf-2");
    w.start();
    w.restart();
    assert_eq!(w.get()["status"], "sleeping");
    w.host.advance(SLEEP_MS).unwrap();
    assert_eq!(w.get()["status"], "waiting");
    assert_eq!(w.fns.borrow().calls(&w.op(0)), 1);

    // Killed while a step's function call was out (it committed; its
    // outcome never arrived): the step runs again with the same op id,
    // answered with its first result, and the steps before it never rerun.
    let mut w = world("wf-3");
    w.at_the_wait();
    let op = w.op(3);
    w.fns.borrow_mut().crash_after = Some(op.clone());
    let crashed = catch_unwind(AssertUnwindSafe(|| {
        w.event("approved", json!({"by": "boss"}))
    }));
    assert!(crashed.is_err(), "the process died mid-step");
    w.restart();
    let s = w.get();
    assert_eq!(
        (s["status"].as_str(), s["step"].as_u64()),
        (Some("running"), Some(3)),
        "{s}"
    );
    assert_eq!(s["history"][3]["attempts"], 1);
    w.host.advance(0).unwrap();
    let s = w.get();
    assert_eq!(s["status"], "completed", "{s}");
    assert_eq!(
        s["history"][3]["attempts"], 1,
        "a rerun after a crash is the same attempt"
    );
    assert_eq!(
        s["output"],
        json!({"to": "acct-ann@x", "approvedBy": "boss"})
    );
    let fns = w.fns.borrow();
    assert_eq!(fns.calls(&op), 2, "run again after the restart");
    assert_eq!(
        fns.applied(&op),
        1,
        "but applied once: the op id was the same"
    );
    assert_eq!(fns.calls(&w.op(0)), 1, "a finished step never runs again");
    drop(fns);

    // Killed during the first step, right after start.
    let mut w = world("wf-4");
    w.fns.borrow_mut().crash_after = Some(w.op(0));
    assert!(catch_unwind(AssertUnwindSafe(|| w.start())).is_err());
    w.restart();
    w.host.advance(0).unwrap();
    let s = w.get();
    assert_eq!(
        (s["status"].as_str(), s["step"].as_u64()),
        (Some("sleeping"), Some(1)),
        "{s}"
    );
    let fns = w.fns.borrow();
    assert_eq!((fns.calls(&w.op(0)), fns.applied(&w.op(0))), (2, 1));
    drop(fns);
    // Its reports were lost with the process: the new one sends them.
    w.host.advance(SLEEP_MS).unwrap();
    let last = w.fns.borrow().reports.last().cloned().unwrap();
    assert_eq!((last.status.as_str(), last.step), ("waiting", 2));

    // Evicted between two attempts: the retry still runs at its time.
    let mut w = world("wf-5");
    w.fns.borrow_mut().welcome_fails = 1;
    w.at_the_wait();
    w.event("approved", json!({"by": "boss"}));
    w.host.evict();
    w.host.advance(BACKOFF_MS).unwrap();
    assert_eq!(w.get()["status"], "completed");
    assert_eq!(w.fns.borrow().calls(&w.op(3)), 2);
}

#[test]
fn a_start_retried_with_the_same_workflow_and_input_is_answered_as_the_first() {
    let mut w = world("wf-1");
    let first = w.start();
    assert_eq!(first.status, 201);
    let again = w.start();
    assert_eq!(again.status, 200);
    assert_eq!(again.body["createdMs"], first.body["createdMs"]);
    assert_eq!(again.body, w.get(), "its state now");
    assert_eq!(w.fns.borrow().calls(&w.op(0)), 1, "not started twice");
    let other_input = json!({"workflow": "onboard", "input": {"email": "bob@x"}});
    let r = w.call(Method::Post, "start", other_input, ann());
    assert_eq!((r.status, code(&r)), (409, "WORKFLOW_EXISTS"));
    let other_workflow = json!({"workflow": "audit", "input": {"email": "ann@x"}});
    let r = w.call(Method::Post, "start", other_workflow, AuthContext::admin());
    assert_eq!((r.status, code(&r)), (409, "WORKFLOW_EXISTS"));
}

#[test]
fn bad_bodies_and_routes_are_refused_with_codes() {
    let mut w = world("wf-1");
    let raw = |w: &mut World, rest: &str, body: &[u8]| {
        w.host
            .request_raw(Request {
                method: Method::Post,
                object: "wf-1".into(),
                rest: rest.into(),
                query: Vec::new(),
                caller: ann(),
                lease: Default::default(),
                body: body.to_vec(),
            })
            .unwrap()
    };
    let r = raw(&mut w, "start", b"{not json");
    assert_eq!((r.status, code(&r)), (400, "BAD_WORKFLOW"));
    for (body, status, want) in [
        (json!({"input": 1}), 400, "BAD_WORKFLOW"),
        (json!({"workflow": "nope"}), 404, "UNKNOWN_WORKFLOW"),
        (
            json!({"workflow": "onboard", "id": "wf-9"}),
            400,
            "BAD_WORKFLOW",
        ),
        (
            json!({"workflow": "onboard", "shard": "a/b"}),
            400,
            "BAD_SHARD_NAME",
        ),
        (
            json!({"workflow": "onboard", "input": "x".repeat(MAX_INPUT_BYTES)}),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
    ] {
        let r = w.call(Method::Post, "start", body.clone(), ann());
        assert_eq!((r.status, code(&r)), (status, want), "{}", body["workflow"]);
    }
    assert_eq!(w.get_status(), 404, "nothing was started");
    let r = w.call(
        Method::Post,
        "start",
        json!({"workflow": "onboard", "id": "wf-1"}),
        ann(),
    );
    assert_eq!(r.status, 201, "its own id is fine: {}", r.body);

    let r = raw(&mut w, "events", b"approved");
    assert_eq!((r.status, code(&r)), (400, "BAD_EVENT"));
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "a b"}),
        json!({"name": "x", "extra": 1}),
    ] {
        let r = w.call(Method::Post, "events", body.clone(), ann());
        assert_eq!((r.status, code(&r)), (400, "BAD_EVENT"), "{body}");
    }
    let r = w.event("approved", json!("x".repeat(64 * 1024)));
    assert_eq!((r.status, code(&r)), (413, "PAYLOAD_TOO_LARGE"));
    assert_eq!(
        w.get()["status"],
        "sleeping",
        "no bad event was kept or taken"
    );
    w.host.advance(SLEEP_MS).unwrap();
    assert_eq!(w.get()["status"], "waiting");

    let r = w.call(Method::Get, "nope", json!(null), ann());
    assert_eq!((r.status, code(&r)), (404, "NOT_FOUND"));
    let r = w.call(Method::Get, "cancel", json!(null), ann());
    assert_eq!(r.status, 405);
    let r = w.call(Method::Delete, "", json!(null), ann());
    assert_eq!(r.status, 405);
}

#[test]
fn a_result_over_the_limit_fails_its_step_without_a_retry() {
    let mut w = world("wf-1");
    let body = json!({"workflow": "onboard", "input": {"huge": true}});
    assert_eq!(w.call(Method::Post, "start", body, ann()).status, 201);
    let s = w.get();
    assert_eq!(s["status"], "failed");
    assert_eq!(s["error"]["code"], "RESULT_TOO_LARGE");
    assert_eq!(s["history"][0]["status"], "failed");
    assert_eq!(w.fns.borrow().calls(&w.op(0)), 1);
}

#[test]
fn a_failed_report_is_sent_again_later_with_the_latest_summary() {
    let mut w = world("wf-1");
    w.fns.borrow_mut().report_fails = 3;
    w.start();
    // The start's two reports (running, then sleeping) were refused, and
    // so was the one when the sleep ended.
    w.host.advance(SLEEP_MS).unwrap();
    assert!(w.fns.borrow().reports.is_empty());
    w.host.advance(REPORT_RETRY_MS - 1).unwrap();
    assert!(w.fns.borrow().reports.is_empty());
    w.host.advance(1).unwrap();
    assert_eq!(
        w.fns.borrow().reported(),
        vec![("waiting".to_string(), 2)],
        "one report, of where it is now"
    );
    w.host.advance(REPORT_RETRY_MS * 3).unwrap();
    assert_eq!(w.fns.borrow().reports.len(), 1, "and only one");
}
