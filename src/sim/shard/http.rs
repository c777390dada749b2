//! The shard's HTTP answers: one input (`POST`), the stats (`GET`), the
//! input log (`GET replay`).

use serde_json::{json, Value as Json};

use super::input::check_subscriber;
use super::{Accepted, Act, SimShard, HTTP_SUBSCRIBER};
use crate::api_error::ApiError;
use crate::host::timers::Timers;
use crate::host::{Request, Response};
use crate::sim::error::SimError;
use crate::sim::store::decode_input;
use crate::sim::SimState;
use crate::storage::meta::{self, Meta};
use crate::storage::SqlConn;

impl<S: SimState, C: SqlConn> SimShard<S, C> {
    pub(super) async fn http_input(
        &mut self,
        req: &Request,
        now_ms: i64,
    ) -> (Response, Vec<Act<S>>) {
        let mut out = Vec::new();
        let taken = self.http_take(req, now_ms);
        let resp = match taken {
            Err(e) => {
                self.refused += 1;
                e.to_response()
            }
            Ok((subscriber, acc)) => {
                let rejected = if acc.dup {
                    Vec::new()
                } else {
                    self.after_input(now_ms, &mut out)
                };
                let refusal = rejected
                    .into_iter()
                    .find(|r| r.subscriber == subscriber && r.seq == acc.seq);
                match refusal {
                    Some(r) => SimError::InputRejected {
                        seq: r.seq,
                        reason: r.reason,
                    }
                    .to_response(),
                    None => {
                        let mut body = json!({
                            "subscriber": subscriber,
                            "seq": acc.seq,
                            "tick": acc.tick,
                            "dup": acc.dup,
                        });
                        // Event-driven: the tick ran; show what it made.
                        if self.config.is_event_driven() {
                            body["acked"] = json!(self.sim.acked(&subscriber));
                            body["snapshot"] =
                                serde_json::to_value(self.sim.state().snapshot_for(&subscriber))
                                    .unwrap_or(Json::Null);
                        }
                        Response::ok(body)
                    }
                }
            }
        };
        (resp, self.done(out))
    }

    /// The subscriber and the acceptance of an HTTP input.
    pub(super) fn http_take(
        &mut self,
        req: &Request,
        now_ms: i64,
    ) -> Result<(String, Accepted), SimError> {
        let max = self.config.max_input_bytes;
        if req.body.len() > max {
            return Err(SimError::InputTooLarge {
                len: req.body.len(),
                max,
            });
        }
        let input: S::Input = serde_json::from_slice(&req.body)
            .map_err(|e| SimError::BadInput(format!("the body: {e}")))?;
        let seq = match req.param("seq") {
            Some(s) => Some(
                s.parse::<u64>()
                    .map_err(|_| SimError::BadInput("seq: expected a positive integer".into()))?,
            ),
            None => None,
        };
        let subscriber = match req.param("subscriber") {
            Some(s) => {
                check_subscriber(s)?;
                s.to_owned()
            }
            None => req
                .caller
                .user_id
                .clone()
                .unwrap_or_else(|| HTTP_SUBSCRIBER.into()),
        };
        self.sim
            .state()
            .authorize_subscribe(&subscriber, &req.caller)
            .map_err(|reason| SimError::Forbidden { reason })?;
        let acc = self.take(&subscriber, &req.caller, seq, input, now_ms)?;
        Ok((subscriber, acc))
    }

    /// `GET`: the engine's figures with the kind's snapshot fields beside.
    pub(super) fn figures_json(&self) -> Json {
        let mut v = match serde_json::to_value(self.sim.state().snapshot()) {
            Ok(Json::Object(m)) => Json::Object(m),
            Ok(other) => json!({ "snapshot": other }),
            Err(_) => json!({}),
        };
        let f = self.sim.figures();
        let sql = self.store.sql();
        let wakes = Meta::open(sql)
            .and_then(|m| m.int(meta::WAKES))
            .unwrap_or(0);
        let alarm = Timers::on(sql).next().map(|n| n.is_some()).unwrap_or(false);
        let figures = [
            ("kind", json!(self.config.kind)),
            ("sim", json!(self.name)),
            ("tick", json!(f.tick)),
            ("tick_hz", json!(self.config.tick_hz)),
            ("subscribers", json!(self.conns.len())),
            ("inputs_applied", json!(f.inputs_applied)),
            ("inputs_rejected", json!(f.inputs_rejected)),
            ("inputs_refused", json!(self.refused)),
            ("inputs_logged", json!(f.logged)),
            ("queued", json!(self.sim.queued())),
            ("ticks_skipped", json!(f.ticks_skipped)),
            ("persisted_tick", json!(self.persisted_tick)),
            ("persist_failures", json!(self.persist_failures)),
            ("ticking", json!(self.schedule.is_some())),
            ("finished", json!(self.finished)),
            ("wakes", json!(wakes)),
            ("alarm_pending", json!(alarm)),
        ];
        for (k, val) in figures {
            v[k] = val;
        }
        v
    }

    /// `GET replay`: the kept input log, for [`super::replay`].
    pub(super) fn replay_json(&mut self) -> Response {
        let answer = (|| -> Result<Json, String> {
            let rows = self
                .store
                .last_rows(self.config.max_log_inputs)
                .map_err(|e| e.to_string())?;
            let complete = rows
                .first()
                .map_or(self.sim.figures().logged == 0, |r| r.log == 1);
            let mut inputs = Vec::with_capacity(rows.len());
            for r in rows {
                let input: S::Input =
                    decode_input(&r.input).map_err(|e| format!("log {}: {e}", r.log))?;
                inputs.push(json!({
                    "log": r.log,
                    "tick": r.tick,
                    "subscriber": r.subscriber,
                    "seq": r.seq,
                    "at_ms": r.at_ms,
                    "input": serde_json::to_value(&input).map_err(|e| e.to_string())?,
                }));
            }
            Ok(json!({
                "kind": self.config.kind,
                "sim": self.name,
                "tick": self.sim.tick(),
                "tick_hz": self.config.tick_hz,
                "complete": complete,
                "inputs": inputs,
            }))
        })();
        match answer {
            Ok(v) => Response::ok(v),
            Err(e) => {
                self.notes
                    .push(format!("sim {}: reading the input log: {e}", self.name));
                ApiError::internal("the input log could not be read").into()
            }
        }
    }
}
