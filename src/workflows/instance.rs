//! One workflow instance as a Durable Object (docs/workflows.md). Its
//! object name is the instance id; the router hands it, with the verified
//! caller, `POST start`, `GET` (the state), `POST events`, `POST cancel`
//! and `POST advance`.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::app::App;
//! use pylon_workers::host::{local::LocalHost, Method};
//! use pylon_workers::policy::AuthContext;
//! use pylon_workers::storage::SqliteConn;
//! use pylon_workers::workflows::WorkflowInstance;
//! use serde_json::json;
//! use std::rc::Rc;
//!
//! let app: &'static App = Box::leak(Box::new(App::new(
//!     r#"{"entities": [], "workflows": [{"name": "pause", "start": "signedIn",
//!         "steps": [{"name": "nap", "sleepMs": 1000}]}]}"#,
//! )));
//! let db = Rc::new(SqliteConn::open_in_memory().unwrap());
//! let mut host = LocalHost::<_, WorkflowInstance<Rc<SqliteConn>>>::open(db, "wf-1", app).unwrap();
//! let ann = AuthContext::user("ann");
//! let r = host.request_as(Method::Post, "start", json!({"workflow": "pause"}), ann.clone()).unwrap();
//! assert_eq!((r.status, r.body["status"].as_str()), (201, Some("sleeping")));
//! host.advance(1000).unwrap();
//! let r = host.request_as(Method::Get, "", json!(null), ann).unwrap();
//! assert_eq!(r.body["status"], "completed");
//! # }
//! ```
//!
//! Every change is written to the object's SQLite storage in the event
//! that makes it ([`super::store`]), with the durable timer that wakes
//! the instance next ([`super::machine`]). After an eviction or a crash,
//! `open` finds the instance where it was: a sleep or wait still has its
//! timer; a step whose function call was out (started, no outcome
//! recorded) runs again at once, with the same op id; a finished step
//! never runs again.

use std::sync::Arc;

use serde_json::json;

use super::limits::{EventBody, StartBody, MAX_BODY_BYTES, MAX_BUFFERED_EVENTS};
use super::machine::{Act, Flight, Machine, STEP_TIMER};
use super::status::Status;
use super::store::{Instance, InstanceStore};
use super::view::{state_json, summary};
use crate::api_error::ApiError;
use crate::host::{Action, IoCall, IoOutcome, Method, Object, Open, OpenError, Request, Response};
use crate::host::{NoConn, NoMsg};
use crate::manifest::Manifest;
use crate::policy::AuthContext;
use crate::storage::{SqlConn, StorageError};

/// The durable timer that tells the jobs ledger again where the instance
/// is, after a report failed.
pub const REPORT_TIMER: &str = "report";
/// How long after a failed report the next is sent.
pub const REPORT_RETRY_MS: i64 = 5_000;
/// How long after a change storage refused the instance tries again.
const STORAGE_RETRY_MS: i64 = 1_000;

/// One workflow instance.
pub struct WorkflowInstance<C: SqlConn> {
    id: String,
    store: InstanceStore<C>,
    /// For `start`: the workflow's definition (an instance keeps its own).
    manifest: Result<Arc<Manifest>, ApiError>,
    /// `None` until started.
    inst: Option<Instance>,
    flight: Flight,
    /// Lines for the Worker's log.
    notes: Vec<String>,
}

/// Why a change was not made.
enum Refusal {
    /// Refused as asked (nothing was changed).
    Api(ApiError),
    Storage(StorageError),
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal::Api(e)
    }
}

impl From<StorageError> for Refusal {
    fn from(e: StorageError) -> Self {
        Refusal::Storage(e)
    }
}

fn finished(i: &Instance) -> ApiError {
    ApiError::new(
        409,
        "WORKFLOW_FINISHED",
        format!("the instance is {}", i.status.as_str()),
    )
}

impl<C: SqlConn> WorkflowInstance<C> {
    fn machine<'a>(&'a mut self, now: i64, out: &'a mut Vec<Act>) -> Option<Machine<'a, C>> {
        Some(Machine {
            id: &self.id,
            store: &self.store,
            inst: self.inst.as_mut()?,
            flight: &mut self.flight,
            now,
            out,
        })
    }

    /// The instance, if `caller` may see it: its starter (by user id) or an
    /// admin. Anyone else is told it does not exist. An instance started
    /// anonymously (a workflow anyone may start) is anyone's who has its id.
    fn visible(&self, caller: &AuthContext) -> Result<&Instance, ApiError> {
        match &self.inst {
            Some(i) if caller.is_admin || caller.user_id == i.caller.user_id => Ok(i),
            _ => Err(ApiError::new(
                404,
                "WORKFLOW_NOT_FOUND",
                format!("no workflow instance {:?}", self.id),
            )),
        }
    }

    fn internal(&mut self, e: StorageError) -> ApiError {
        self.notes.push(format!("workflow {}: {e}", self.id));
        ApiError::internal("the workflow could not be read or written")
    }

    fn state(&mut self) -> Result<serde_json::Value, ApiError> {
        let history = self.store.history().map_err(|e| self.internal(e))?;
        match &self.inst {
            Some(i) => Ok(state_json(&self.id, i, &history)),
            None => Err(ApiError::internal("the instance is gone")),
        }
    }

    /// Makes one change with `f`. When it succeeds the instance is saved
    /// (with `updatedMs`) and, if its status or step moved, reported. When
    /// storage fails, the instance is read back from storage and nothing
    /// the change asked for is done.
    fn change<T>(
        &mut self,
        now: i64,
        out: &mut Vec<Act>,
        f: impl FnOnce(&mut Self, &mut Vec<Act>) -> Result<T, Refusal>,
    ) -> Result<T, ApiError> {
        let before = self.inst.clone();
        let flight = self.flight.tag;
        let mark = out.len();
        let done = f(self, out).and_then(|v| {
            self.commit(before.as_ref(), now, out)?;
            Ok(v)
        });
        match done {
            Ok(v) => Ok(v),
            Err(Refusal::Api(e)) => Err(e),
            Err(Refusal::Storage(e)) => {
                out.truncate(mark);
                self.inst = self.store.load().unwrap_or(before);
                self.flight.tag = flight;
                Err(self.internal(e))
            }
        }
    }

    fn commit(
        &mut self,
        before: Option<&Instance>,
        now: i64,
        out: &mut Vec<Act>,
    ) -> Result<(), StorageError> {
        let Some(i) = self.inst.as_mut() else {
            return Ok(());
        };
        if before == Some(&*i) {
            return Ok(());
        }
        i.updated_ms = now;
        let moved = before.map(|b| (b.status, b.step)) != Some((i.status, i.step));
        if moved {
            i.version += 1;
        }
        match before {
            None => self.store.insert(i)?,
            Some(_) => self.store.save(i)?,
        }
        if moved {
            out.extend(self.report());
        }
        Ok(())
    }

    /// Tells the jobs ledger where the instance is now. The tag is odd
    /// (calls' are even) and carries the version it reports.
    fn report(&self) -> Option<Act> {
        let i = self.inst.as_ref()?;
        Some(Action::Io {
            tag: ((i.version as u64) << 1) | 1,
            call: IoCall::ReportWorkflow(summary(&self.id, i)),
        })
    }

    fn reported(
        &mut self,
        version: i64,
        outcome: Result<(), String>,
        now: i64,
        out: &mut Vec<Act>,
    ) {
        let Some(i) = self.inst.as_mut() else {
            return;
        };
        match outcome {
            Ok(()) if version > i.reported => {
                i.reported = version;
                if let Err(e) = self.store.save(i) {
                    self.notes.push(format!("workflow {}: {e}", self.id));
                }
            }
            Ok(()) => {}
            Err(stage) => {
                self.notes.push(format!(
                    "workflow {}: telling the jobs ledger failed ({stage}); again in {REPORT_RETRY_MS} ms",
                    self.id
                ));
                // Moves the one timer: failures do not pile up.
                out.push(Action::SetTimer {
                    name: REPORT_TIMER.into(),
                    at_ms: now + REPORT_RETRY_MS,
                });
            }
        }
    }

    fn route(&mut self, req: &Request, now: i64, out: &mut Vec<Act>) -> Result<Response, ApiError> {
        match (req.method, req.rest.as_str()) {
            (Method::Post, "start") => self.start(req, now, out),
            (Method::Get, "") => {
                self.visible(&req.caller)?;
                Ok(Response::ok(self.state()?))
            }
            (Method::Post, "events") => self.event(req, now, out),
            (Method::Post, "cancel") => self.cancel(&req.caller, now, out),
            (Method::Post, "advance") => self.advance(&req.caller, now, out),
            (_, "" | "start" | "events" | "cancel" | "advance") => {
                Err(ApiError::method_not_allowed(
                    "GET the instance; POST start, events, cancel or advance",
                ))
            }
            (_, rest) => Err(ApiError::not_found(format!("no route {rest:?}"))),
        }
    }

    fn start(&mut self, req: &Request, now: i64, out: &mut Vec<Act>) -> Result<Response, ApiError> {
        let body = StartBody::parse(&req.body)?;
        if body.id.as_deref().is_some_and(|id| id != self.id) {
            return Err(ApiError::bad_request(
                "BAD_WORKFLOW",
                format!("id {:?} is not this instance's", body.id),
            ));
        }
        if let Some(i) = &self.inst {
            let same = self.visible(&req.caller).is_ok()
                && i.def.name == body.workflow
                && i.input == body.input;
            if same {
                // A retry of the same start.
                return Ok(Response::ok(self.state()?));
            }
            return Err(ApiError::new(
                409,
                "WORKFLOW_EXISTS",
                format!("instance {:?} was started already", self.id),
            ));
        }
        let manifest = self.manifest.clone()?;
        let def = manifest
            .background()
            .workflow(&body.workflow)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "UNKNOWN_WORKFLOW",
                    format!("no workflow {:?} in this app", body.workflow),
                )
            })?;
        if !def.start.allows(&req.caller) {
            return Err(ApiError::new(
                403,
                "FORBIDDEN",
                format!("you may not start workflow {:?}", def.name),
            ));
        }
        let instance = Instance {
            def,
            caller: req.caller.clone(),
            shard: body.shard,
            input: body.input,
            created_ms: now,
            status: Status::Running,
            step: 0,
            attempt: 0,
            in_flight: false,
            output: serde_json::Value::Null,
            error: None,
            last_event: serde_json::Value::Null,
            waiting_for: None,
            wake_at_ms: None,
            updated_ms: now,
            version: 0,
            reported: 0,
        };
        self.change(now, out, |me, out| {
            me.inst = Some(instance);
            if let Some(mut m) = me.machine(now, out) {
                m.enter()?;
            }
            Ok(())
        })?;
        Ok(Response::json(201, self.state()?))
    }

    /// An event: taken by the step waiting for it (200), or kept for a
    /// later one (202).
    fn event(&mut self, req: &Request, now: i64, out: &mut Vec<Act>) -> Result<Response, ApiError> {
        let i = self.visible(&req.caller)?;
        let body = EventBody::parse(&req.body)?;
        if i.status.is_final() {
            return Err(finished(i));
        }
        let taken = self.change(now, out, |me, out| {
            if let Some(mut m) = me.machine(now, out) {
                if m.offer(&body.name, &body.payload)? {
                    return Ok(true);
                }
            }
            if me.store.buffered()? >= MAX_BUFFERED_EVENTS {
                return Err(Refusal::Api(ApiError::new(
                    429,
                    "TOO_MANY_EVENTS",
                    format!("{MAX_BUFFERED_EVENTS} events wait for a step already"),
                )));
            }
            me.store.buffer_event(&body.name, &body.payload, now)?;
            Ok(false)
        })?;
        Ok(Response::json(if taken { 200 } else { 202 }, self.state()?))
    }

    fn cancel(
        &mut self,
        caller: &AuthContext,
        now: i64,
        out: &mut Vec<Act>,
    ) -> Result<Response, ApiError> {
        let i = self.visible(caller)?;
        if i.status.is_final() {
            return Err(finished(i));
        }
        self.change(now, out, |me, out| match me.machine(now, out) {
            Some(mut m) => Ok(m.cancel()?),
            None => Ok(()),
        })?;
        Ok(Response::ok(self.state()?))
    }

    fn advance(
        &mut self,
        caller: &AuthContext,
        now: i64,
        out: &mut Vec<Act>,
    ) -> Result<Response, ApiError> {
        let status = self.visible(caller)?.status;
        self.change(now, out, |me, out| {
            let ended = match me.machine(now, out) {
                Some(mut m) => m.advance()?,
                None => false,
            };
            if !ended {
                return Err(Refusal::Api(ApiError::new(
                    409,
                    "NOT_WAITING",
                    format!(
                        "the instance is {}, not sleeping or waiting",
                        status.as_str()
                    ),
                )));
            }
            Ok(())
        })?;
        Ok(Response::ok(self.state()?))
    }

    /// Asks the host to wake the step again shortly: a change storage
    /// refused is tried again rather than left without a timer.
    fn retry_later(&mut self, now: i64, out: &mut Vec<Act>) {
        if self.inst.as_ref().is_some_and(|i| !i.status.is_final()) {
            out.push(Action::SetTimer {
                name: STEP_TIMER.into(),
                at_ms: now + STORAGE_RETRY_MS,
            });
        }
    }

    fn done(&mut self, mut out: Vec<Act>) -> Vec<Act> {
        out.extend(self.notes.drain(..).map(Action::Log));
        out
    }
}

impl<C: SqlConn> Object<C> for WorkflowInstance<C> {
    type Msg = NoMsg;
    type Conn = NoConn;

    async fn open(
        init: Open<'_, C>,
        _: Vec<(String, NoConn)>,
    ) -> Result<(Self, Vec<Act>), OpenError> {
        let store = InstanceStore::open(init.sql)?;
        let inst = store.load()?;
        let mut out = Vec::new();
        if let Some(i) = &inst {
            // The call was lost with the old wake: run the step again now
            // (calls are not durable; this timer is).
            if i.status == Status::Running && i.in_flight {
                out.push(Action::SetTimer {
                    name: STEP_TIMER.into(),
                    at_ms: init.now_ms,
                });
            }
            if i.reported < i.version {
                out.push(Action::SetTimer {
                    name: REPORT_TIMER.into(),
                    at_ms: init.now_ms,
                });
            }
        }
        let object = WorkflowInstance {
            id: init.name,
            store,
            manifest: init.app.manifest(),
            inst,
            flight: Flight::default(),
            notes: Vec::new(),
        };
        Ok((object, out))
    }

    fn max_body_bytes(&self) -> usize {
        MAX_BODY_BYTES
    }

    async fn on_request(&mut self, req: Request, now_ms: i64) -> (Response, Vec<Act>) {
        let mut out = Vec::new();
        let resp = self
            .route(&req, now_ms, &mut out)
            .unwrap_or_else(Response::from);
        (resp, self.done(out))
    }

    async fn on_timer(&mut self, name: &str, now_ms: i64) -> Vec<Act> {
        let mut out = Vec::new();
        match name {
            STEP_TIMER => {
                let done = self.change(now_ms, &mut out, |me, out| match me.machine(now_ms, out) {
                    Some(mut m) if !m.inst.status.is_final() => Ok(m.timer_due()?),
                    _ => Ok(()),
                });
                if done.is_err() {
                    self.retry_later(now_ms, &mut out);
                }
            }
            REPORT_TIMER if self.inst.as_ref().is_some_and(|i| i.reported < i.version) => {
                out.extend(self.report());
            }
            _ => {}
        }
        self.done(out)
    }

    async fn on_io(&mut self, tag: u64, outcome: IoOutcome, now_ms: i64) -> Vec<Act> {
        let mut out = Vec::new();
        match outcome {
            IoOutcome::Ran(result) if tag & 1 == 0 => {
                let done = self.change(now_ms, &mut out, |me, out| match me.machine(now_ms, out) {
                    Some(mut m) => Ok(m.ran(tag, result)?),
                    None => Ok(false),
                });
                if done.is_err() {
                    // The outcome is lost: the step runs again (same op id).
                    self.flight.tag = None;
                    self.retry_later(now_ms, &mut out);
                }
            }
            IoOutcome::Applied(result) if tag & 1 == 1 => {
                self.reported((tag >> 1) as i64, result, now_ms, &mut out);
            }
            other => self.notes.push(format!(
                "workflow {}: an outcome it did not ask for (tag {tag}): {other:?}",
                self.id
            )),
        }
        self.done(out)
    }

    fn stats(&self, _now_ms: i64) -> serde_json::Value {
        match &self.inst {
            Some(i) => json!({"workflow": i.def.name, "status": i.status, "step": i.step}),
            None => json!({"status": null}),
        }
    }
}
