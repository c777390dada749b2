//! How an instance moves from step to step: every transition writes the
//! instance's new place and its step's record to storage, and sets or
//! clears the one durable timer (`step`) that wakes it next, within the
//! event that made the change.
//!
//! The `step` timer is, by status: the end of a sleep (`sleeping`), the
//! timeout of a wait (`waiting`), the next attempt after a backoff
//! (`running`), or, while a function call is out, a watchdog: if the
//! object was killed meanwhile, it wakes the object to run the step again
//! (the outcome of a call does not survive a restart).

use super::limits::{json_len, MAX_RESULT_BYTES};
use super::status::Status;
use super::store::{Instance, InstanceStore, StepError, StepRecord};
use super::{StepDef, StepKind, MAX_WAIT_MS};
use crate::functions::{FnError, FunctionRun};
use crate::host::{Action, IoCall};
use crate::host::{NoConn, NoMsg};
use crate::storage::{SqlConn, StorageError};
use crate::value::Value;

/// An instance takes no sockets: it only asks for timers and I/O.
pub(super) type Act = Action<NoMsg, NoConn>;

/// The durable timer that wakes the instance for its current step.
pub const STEP_TIMER: &str = "step";
/// While a step's function call is out, the `step` timer is set this far
/// ahead and moved on while the call is still out in this wake.
pub const RUN_WATCHDOG_MS: i64 = 60_000;

/// The function call this wake is waiting for, if any. Calls are not
/// durable: after a restart none is out, whatever storage says.
#[derive(Debug, Default)]
pub(super) struct Flight {
    /// The tag of the call whose outcome counts; any other is stale.
    pub tag: Option<u64>,
    issued: u64,
}

impl Flight {
    /// A tag for a new function call: even (reports use odd tags).
    fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.tag = Some(self.issued << 1);
        self.issued << 1
    }
}

/// One transition of one instance, at `now`, with what it asks the host
/// to do going to `out`.
pub(super) struct Machine<'a, C> {
    pub id: &'a str,
    pub store: &'a InstanceStore<C>,
    pub inst: &'a mut Instance,
    pub flight: &'a mut Flight,
    pub now: i64,
    pub out: &'a mut Vec<Act>,
}

type Stored = Result<(), StorageError>;

fn kind_name(def: &StepDef) -> &'static str {
    match def.kind() {
        StepKind::Run(_) => "run",
        StepKind::Sleep(_) => "sleep",
        StepKind::WaitForEvent { .. } => "waitForEvent",
    }
}

impl<C: SqlConn> Machine<'_, C> {
    fn def(&self) -> Option<StepDef> {
        self.inst.def.steps.get(self.inst.step as usize).cloned()
    }

    /// The current step's record (a fresh one if it has none yet).
    fn record(&self) -> Result<Option<StepRecord>, StorageError> {
        let Some(def) = self.def() else {
            return Ok(None);
        };
        Ok(Some(self.store.step(self.inst.step)?.unwrap_or_else(
            || StepRecord {
                step: self.inst.step,
                name: def.name.clone(),
                kind: kind_name(&def).into(),
                status: self.inst.status,
                attempts: 0,
                result: None,
                error: None,
                started_ms: self.now,
                finished_ms: None,
            },
        )))
    }

    fn set_timer(&mut self, at_ms: i64) {
        self.out.push(Action::SetTimer {
            name: STEP_TIMER.into(),
            at_ms,
        });
    }

    /// Begins the current step, and goes on through every step that is
    /// over at once (a wait whose event is kept already).
    pub fn enter(&mut self) -> Stored {
        loop {
            let Some(def) = self.def() else {
                return self.complete();
            };
            let i = &mut *self.inst;
            i.attempt = 0;
            i.in_flight = false;
            i.waiting_for = None;
            i.wake_at_ms = None;
            // A fresh record: the step begins now.
            let mut rec = StepRecord {
                step: i.step,
                name: def.name.clone(),
                kind: kind_name(&def).into(),
                status: Status::Running,
                attempts: 0,
                result: None,
                error: None,
                started_ms: self.now,
                finished_ms: None,
            };
            match def.kind() {
                StepKind::Run(_) => {
                    self.store.put_step(&rec)?;
                    return self.launch(true);
                }
                StepKind::Sleep(ms) => {
                    let at = self.now.saturating_add(ms.min(MAX_WAIT_MS) as i64);
                    i.status = Status::Sleeping;
                    i.wake_at_ms = Some(at);
                    rec.status = Status::Sleeping;
                    self.store.put_step(&rec)?;
                    self.set_timer(at);
                    return Ok(());
                }
                StepKind::WaitForEvent { event, timeout_ms } => {
                    if let Some(payload) = self.store.take_event(event)? {
                        i.status = Status::Waiting;
                        self.store.put_step(&rec)?;
                        self.end_step(Some(payload))?;
                        continue;
                    }
                    let at = self.now.saturating_add(timeout_ms.min(MAX_WAIT_MS) as i64);
                    i.status = Status::Waiting;
                    i.waiting_for = Some(event.to_owned());
                    i.wake_at_ms = Some(at);
                    rec.status = Status::Waiting;
                    self.store.put_step(&rec)?;
                    self.set_timer(at);
                    return Ok(());
                }
            }
        }
    }

    /// Starts an attempt of the current `run` step (`new_attempt`), or
    /// starts the one in flight again after a restart (same attempt, same
    /// op id).
    pub fn launch(&mut self, new_attempt: bool) -> Stored {
        let Some(def) = self.def() else {
            return Ok(());
        };
        let StepKind::Run(function) = def.kind() else {
            return Ok(());
        };
        let i = &mut *self.inst;
        if new_attempt || i.attempt == 0 {
            i.attempt += 1;
        }
        i.status = Status::Running;
        i.in_flight = true;
        i.wake_at_ms = None;
        let step = i.step;
        let attempt = i.attempt;
        if let Some(mut rec) = self.record()? {
            rec.status = Status::Running;
            rec.attempts = attempt;
            self.store.put_step(&rec)?;
        }
        let args = serde_json::json!({
            "input": self.inst.input,
            "steps": self.store.results()?,
            "event": self.inst.last_event,
        });
        let run = FunctionRun {
            name: function.to_owned(),
            args: Value::from(args),
            caller: self.inst.caller.clone(),
            shard: self.inst.shard.clone(),
            // The same for every attempt and every restart: a mutation
            // that committed is answered with its first result.
            op: Some(format!("wf:{}:{step}", self.id)),
        };
        let tag = self.flight.issue();
        self.out.push(Action::Io {
            tag,
            call: IoCall::RunFunction(run),
        });
        self.set_timer(self.now + RUN_WATCHDOG_MS);
        Ok(())
    }

    /// The outcome of the call tagged `tag`; `false` if it is stale (an
    /// older call's, or the instance moved on meanwhile).
    pub fn ran(&mut self, tag: u64, outcome: Result<Value, FnError>) -> Result<bool, StorageError> {
        if self.flight.tag != Some(tag) {
            return Ok(false);
        }
        self.flight.tag = None;
        if self.inst.status != Status::Running || !self.inst.in_flight {
            return Ok(false);
        }
        self.inst.in_flight = false;
        match outcome {
            Ok(v) => {
                let result = serde_json::Value::from(v);
                let size = json_len(&result);
                if size > MAX_RESULT_BYTES {
                    // The same call gives the same result (a mutation's is
                    // kept by its op id): trying again cannot help.
                    let e = StepError::new(
                        "RESULT_TOO_LARGE",
                        format!("the result is {size} bytes of JSON, at most {MAX_RESULT_BYTES}"),
                    );
                    return self.fail(e).map(|_| true);
                }
                self.end_step(Some(result))?;
                self.enter()?;
            }
            Err(e) => {
                let error = StepError::new(e.code.as_str(), e.message);
                let retries = self.def().map_or(0, |d| d.retries);
                if self.inst.attempt > retries {
                    self.fail(error)?;
                    return Ok(true);
                }
                let backoff = self.def().map_or(0, |d| d.backoff_ms);
                let delay = backoff_ms(backoff, self.inst.attempt);
                let at = self.now.saturating_add(delay);
                self.inst.wake_at_ms = Some(at);
                if let Some(mut rec) = self.record()? {
                    rec.error = Some(error);
                    self.store.put_step(&rec)?;
                }
                self.set_timer(at);
            }
        }
        Ok(true)
    }

    /// The `step` timer is due.
    pub fn timer_due(&mut self) -> Stored {
        match self.inst.status {
            Status::Sleeping => {
                self.end_step(None)?;
                self.enter()
            }
            Status::Waiting => {
                let waited = self.def().and_then(|d| d.timeout_ms).unwrap_or(MAX_WAIT_MS);
                let event = self.inst.waiting_for.clone().unwrap_or_default();
                self.fail(StepError::new(
                    "EVENT_TIMEOUT",
                    format!("no event {event:?} within {waited} ms"),
                ))
            }
            // The call is still out in this wake: keep watching.
            Status::Running if self.inst.in_flight && self.flight.tag.is_some() => {
                self.set_timer(self.now + RUN_WATCHDOG_MS);
                Ok(())
            }
            // Out before a restart: run it again.
            Status::Running if self.inst.in_flight => self.launch(false),
            // The backoff is over.
            Status::Running => self.launch(true),
            _ => Ok(()),
        }
    }

    /// An event arrived: if the current step waits for it, it is the
    /// step's result (`true`); otherwise the caller keeps it.
    pub fn offer(&mut self, name: &str, payload: &serde_json::Value) -> Result<bool, StorageError> {
        if self.inst.status != Status::Waiting || self.inst.waiting_for.as_deref() != Some(name) {
            return Ok(false);
        }
        self.end_step(Some(payload.clone()))?;
        self.enter()?;
        Ok(true)
    }

    /// Ends the current sleep or wait now (a wait's result is null);
    /// `false` if it is at neither.
    pub fn advance(&mut self) -> Result<bool, StorageError> {
        if !matches!(self.inst.status, Status::Sleeping | Status::Waiting) {
            return Ok(false);
        }
        self.end_step(None)?;
        self.enter()?;
        Ok(true)
    }

    /// Stops the instance where it is.
    pub fn cancel(&mut self) -> Stored {
        if let Some(mut rec) = self.record()? {
            rec.status = Status::Cancelled;
            rec.finished_ms = Some(self.now);
            self.store.put_step(&rec)?;
        }
        self.finish(Status::Cancelled)
    }

    /// The current step completed with `result` (null when not given);
    /// the instance is at the next one. A wait's result is the event it
    /// took, which the next steps see as `event`.
    fn end_step(&mut self, result: Option<serde_json::Value>) -> Stored {
        let took_event = self.inst.status == Status::Waiting && result.is_some();
        let result = result.unwrap_or(serde_json::Value::Null);
        if took_event {
            self.inst.last_event = result.clone();
        }
        if let Some(mut rec) = self.record()? {
            rec.status = Status::Completed;
            rec.result = Some(result);
            rec.finished_ms = Some(self.now);
            self.store.put_step(&rec)?;
        }
        self.inst.step += 1;
        Ok(())
    }

    fn complete(&mut self) -> Stored {
        let last = self.inst.def.steps.len().saturating_sub(1) as u32;
        self.inst.output = self
            .store
            .step(last)?
            .and_then(|r| r.result)
            .unwrap_or(serde_json::Value::Null);
        self.inst.step = self.inst.def.steps.len() as u32;
        self.finish(Status::Completed)
    }

    fn fail(&mut self, error: StepError) -> Stored {
        if let Some(mut rec) = self.record()? {
            rec.status = Status::Failed;
            rec.error = Some(error.clone());
            rec.finished_ms = Some(self.now);
            self.store.put_step(&rec)?;
        }
        self.inst.error = Some(error);
        self.finish(Status::Failed)
    }

    /// Settles the instance in a final status: no timer, no call counted,
    /// no event kept.
    fn finish(&mut self, status: Status) -> Stored {
        let i = &mut *self.inst;
        i.status = status;
        i.in_flight = false;
        i.waiting_for = None;
        i.wake_at_ms = None;
        self.flight.tag = None;
        self.store.clear_events()?;
        self.out.push(Action::CancelTimer {
            name: STEP_TIMER.into(),
        });
        Ok(())
    }
}

/// The wait before attempt `failed + 1`: `backoff` doubled for each
/// attempt after the first, at most [`MAX_WAIT_MS`].
pub fn backoff_ms(backoff: u64, failed: u32) -> i64 {
    let factor = 1u64 << failed.saturating_sub(1).min(40);
    backoff.saturating_mul(factor).min(MAX_WAIT_MS) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(100, 1), 100);
        assert_eq!(backoff_ms(100, 2), 200);
        assert_eq!(backoff_ms(100, 4), 800);
        assert_eq!(backoff_ms(u64::MAX, 20), MAX_WAIT_MS as i64);
        assert_eq!(backoff_ms(0, 3), 0);
    }
}
