//! Writes: a `mut` applied all or nothing as the next seq and recorded (log,
//! outbox, op ids) on its own or, when coalescing, with its flush's batch.

use super::calls::PreparedCall;
use super::errors::{err, storage_err};
use super::{Outbound, ShardEngine};
use crate::jobs::JobRequest;
use crate::live::Change;
use crate::policy::AuthContext;
use crate::protocol::{Ack, ErrorCode, ErrorMsg, Op, Returned, ServerMsg};
use crate::shard::store::{OutboxJob, ScheduledCall, WriteRecord};
use crate::storage::SqlConn;
use crate::value::Value;

/// A `mut` (or a `call`) waiting for the next flush.
pub(super) struct QueuedMut {
    pub(super) conn: String,
    pub(super) auth: AuthContext,
    pub(super) op: String,
    pub(super) ops: Vec<Op>,
    pub(super) now_ms: i64,
    /// A `call` of this function with these arguments (`ops` is empty).
    pub(super) call: Option<(String, Value)>,
}

/// A write's answer, once applied.
enum Answer {
    Ack(Ack),
    Returned(Returned),
}

impl Answer {
    fn seq_dup(&self) -> (u64, bool) {
        match self {
            Answer::Ack(a) => (a.seq, a.dup),
            Answer::Returned(r) => (r.seq, r.dup),
        }
    }

    fn op(&self) -> &str {
        match self {
            Answer::Ack(a) => &a.op,
            Answer::Returned(r) => &r.op,
        }
    }

    fn into_msg(self) -> ServerMsg {
        match self {
            Answer::Ack(a) => ServerMsg::Ack(a),
            Answer::Returned(r) => ServerMsg::Returned(r),
        }
    }
}

/// A mutation applied to the rows, not yet recorded.
pub(super) struct Applied {
    pub(super) seq: u64,
    pub(super) op: String,
    pub(super) at_ms: i64,
    pub(super) changes: Vec<Change>,
    /// Calls a mutation function scheduled, and scheduled calls it
    /// cancelled: stored with the record, so only if it commits.
    pub(super) scheduled: Vec<ScheduledCall>,
    pub(super) cancelled: Vec<String>,
    /// Jobs a mutation function enqueued: into the job outbox with the
    /// record, so only if it commits.
    pub(super) jobs: Vec<JobRequest>,
}

impl Applied {
    fn ack(&self) -> Ack {
        Ack {
            op: self.op.clone(),
            seq: self.seq,
            dup: false,
        }
    }
}

/// What applying a mutation came to.
enum Prepared {
    /// Nothing to apply: a retried op id (its first ack) or no ops.
    Answered(Ack),
    /// Rows written; to be recorded, then fanned out.
    Applied(Applied),
}

impl<C: SqlConn> ShardEngine<C> {
    /// Applies `ops` all or nothing as the next seq, on behalf of `auth`
    /// (from connection `from`, or over HTTP), and records it. Returns the
    /// ack and the diffs for every affected subscription (held for the next
    /// flush when coalescing); the caller sends the ack after them. A
    /// retried op id gets its first ack back and changes nothing.
    pub async fn mutate(
        &mut self,
        from: Option<&str>,
        auth: &AuthContext,
        op: Option<String>,
        ops: Vec<Op>,
        now_ms: i64,
    ) -> Result<(Ack, Vec<Outbound>), ErrorMsg> {
        let _ = from;
        self.tick(now_ms);
        let op_id = op.unwrap_or_default();
        let first = if op_id.is_empty() {
            None
        } else {
            let known = self
                .store
                .op_seqs(&[op_id.as_str()])
                .map_err(|e| storage_err(&e))?;
            known.get(&op_id).copied()
        };
        let seq = self.store.seq().map_err(|e| storage_err(&e))? + 1;
        let applied = match self.apply_mutation(auth, op_id, ops, now_ms, seq, first)? {
            Prepared::Answered(ack) => return Ok((ack, Vec::new())),
            Prepared::Applied(a) => a,
        };
        self.record(std::slice::from_ref(&applied))?;
        let mut out = self.fan_out(&applied.changes, seq).await;
        if !self.coalescing() {
            out.extend(self.rerun_watches().await);
        }
        Ok((applied.ack(), out))
    }

    /// Applies a mutation's ops to the rows at `seq`, all or nothing, but
    /// records nothing (see [`Self::record`]). `first`: the seq its op id
    /// was already applied at.
    fn apply_mutation(
        &self,
        auth: &AuthContext,
        op_id: String,
        ops: Vec<Op>,
        now_ms: i64,
        seq: u64,
        first: Option<u64>,
    ) -> Result<Prepared, ErrorMsg> {
        let max_ops = self.config.limits.max_ops_per_mut as usize;
        if ops.len() > max_ops {
            return Err(err(
                ErrorCode::TooManyOps,
                format!("at most {max_ops} ops in one mutation"),
            ));
        }
        if let Some(seq) = first {
            return Ok(Prepared::Answered(Ack {
                op: op_id,
                seq,
                dup: true,
            }));
        }
        if ops.is_empty() {
            return Ok(Prepared::Answered(Ack {
                op: op_id,
                seq: seq - 1,
                dup: false,
            }));
        }
        let mut changes: Vec<Change> = Vec::with_capacity(ops.len());
        for (idx, op) in ops.into_iter().enumerate() {
            match self.apply_op(auth, op, seq, idx, &changes) {
                Ok(change) => changes.push(change),
                Err(e) => {
                    self.undo(&changes);
                    return Err(e);
                }
            }
        }
        Ok(Prepared::Applied(Applied {
            seq,
            op: op_id,
            at_ms: now_ms,
            changes,
            scheduled: Vec::new(),
            cancelled: Vec::new(),
            jobs: Vec::new(),
        }))
    }

    /// Records applied mutations (their seqs consecutive, after the stored
    /// one): log, outbox, op ids and seq in one statement per table. On a
    /// failure their rows are put back and the caller answers with the error.
    pub(super) fn record(&mut self, batch: &[Applied]) -> Result<(), ErrorMsg> {
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return Ok(());
        };
        let records: Vec<WriteRecord<'_>> = batch
            .iter()
            .map(|a| WriteRecord {
                seq: a.seq,
                op: &a.op,
                at_ms: a.at_ms,
                changes: &a.changes,
            })
            .collect();
        let scheduled: Vec<ScheduledCall> = batch
            .iter()
            .flat_map(|a| a.scheduled.iter().cloned())
            .collect();
        let cancelled: Vec<String> = batch
            .iter()
            .flat_map(|a| a.cancelled.iter().cloned())
            .collect();
        let jobs: Vec<OutboxJob> = batch
            .iter()
            .flat_map(|a| {
                a.jobs.iter().enumerate().map(|(idx, j)| OutboxJob {
                    seq: a.seq,
                    idx: idx as u64,
                    at_ms: a.at_ms,
                    request: Some(j.clone()),
                })
            })
            .collect();
        let recorded = self.store.record_writes(&records).and_then(|()| {
            // Cancels first: a call may cancel what an earlier one of the
            // batch scheduled.
            self.store.delete_scheduled(&cancelled)?;
            let live: Vec<ScheduledCall> = scheduled
                .into_iter()
                .filter(|c| !cancelled.contains(&c.id))
                .collect();
            self.store.put_scheduled(&live)?;
            self.store.put_jobs(&jobs)
        });
        if let Err(e) = recorded {
            for a in batch.iter().rev() {
                self.undo(&a.changes);
            }
            return Err(storage_err(&e));
        }
        if batch
            .iter()
            .any(|a| !a.scheduled.is_empty() || !a.cancelled.is_empty())
        {
            self.schedule_changed = true;
        }
        if !jobs.is_empty() {
            self.jobs_added = true;
        }
        self.outbox_added = true;
        if batch.iter().any(|a| !a.changes.is_empty()) {
            // Each changed row has its entry in the outbox now.
            self.outbox_filled = true;
        }
        // Retention, every 100 seqs.
        if last.seq / 100 > (first.seq - 1) / 100 {
            let c = &self.config;
            let now_ms = last.at_ms;
            let _ = self.store.prune(
                last.seq,
                c.log_keep_seqs,
                now_ms - c.log_keep_ms,
                now_ms - c.limits.op_retention_secs as i64 * 1000,
            );
        }
        Ok(())
    }

    /// Puts back the rows of already-applied changes, newest first.
    pub(super) fn undo(&self, changes: &[Change]) {
        for ch in changes.iter().rev() {
            let (Some(entity), Some(id)) = (self.manifest.entity(&ch.entity), ch.id()) else {
                continue;
            };
            if let Err(e) = self.store.restore_row(entity, id, ch.before.as_ref()) {
                // Only reachable if storage itself fails mid-event, in which
                // case the runtime discards the whole uncommitted event.
                debug_assert!(false, "undo failed: {e}");
            }
        }
    }

    pub(super) fn coalescing(&self) -> bool {
        self.config.max_batch > 1
    }

    /// Whether a [`flush`](Self::flush) has anything to send.
    pub fn has_unflushed(&self) -> bool {
        !self.queued.is_empty()
            || !self.dirty.is_empty()
            || !self.pending.is_empty()
            || self.watches.any_marked()
    }

    /// Applies one `mut` (or `call`); its `ack` (`result`) or `err` for the writer. Diffs sent now
    /// (when not coalescing) go to `out`.
    pub(super) async fn apply_queued(&mut self, q: QueuedMut, out: &mut Vec<Outbound>) -> Outbound {
        let op = q.op.clone();
        let result = match q.call {
            Some((name, args)) => self
                .call(&q.auth, &name, args, Some(q.op), None, q.now_ms)
                .await
                .map(|(r, diffs)| (ServerMsg::Returned(r), diffs)),
            None => self
                .mutate(Some(&q.conn), &q.auth, Some(q.op), q.ops, q.now_ms)
                .await
                .map(|(ack, diffs)| (ServerMsg::Ack(ack), diffs)),
        };
        let answer = match result {
            Ok((answer, diffs)) => {
                out.extend(diffs);
                answer
            }
            Err(mut e) => {
                e.op = Some(op);
                ServerMsg::Err(e)
            }
        };
        Outbound::To(q.conn, answer)
    }

    /// Applies a flush's queued writes in arrival order (each one's rows,
    /// then its windows, so a window that reads storage sees exactly the
    /// writes before it), records them all at once, and queues their
    /// answers in `pending`. If recording fails, every write of the batch
    /// is undone and answered with the error; the windows they touched are
    /// reloaded by this flush.
    pub(super) async fn apply_batch(&mut self, queued: Vec<QueuedMut>, out: &mut Vec<Outbound>) {
        if queued.is_empty() {
            return;
        }
        let ids: Vec<&str> = queued
            .iter()
            .map(|q| q.op.as_str())
            .filter(|op| !op.is_empty())
            .collect();
        let start = self
            .store
            .op_seqs(&ids)
            .and_then(|known| Ok((known, self.store.seq()?)));
        let (mut known, base) = match start {
            Ok(s) => s,
            Err(e) => {
                for q in queued {
                    let mut e = storage_err(&e);
                    e.op = Some(q.op);
                    self.pending.push(Outbound::To(q.conn, ServerMsg::Err(e)));
                }
                return;
            }
        };
        let mut batch: Vec<Applied> = Vec::new();
        // Each write's connection and answer, in arrival order.
        let mut answers: Vec<(String, Result<Answer, ErrorMsg>)> = Vec::with_capacity(queued.len());
        // What recorded calls returned, for their retries.
        let mut results: Vec<(String, Value)> = Vec::new();
        for q in queued {
            let seq = base + batch.len() as u64 + 1;
            let first = known.get(&q.op).copied();
            let op = q.op.clone();
            // A call retried within this batch: its result is not stored yet.
            let earlier = results.iter().find(|(o, _)| !o.is_empty() && *o == q.op);
            let prepared = match q.call {
                Some(_) if first.is_some() && earlier.is_some() => {
                    let value = earlier.map(|(_, v)| v.clone()).unwrap_or_default();
                    Ok((
                        Answer::Returned(Returned {
                            op: q.op,
                            seq: first.unwrap_or_default(),
                            value,
                            dup: true,
                        }),
                        None,
                    ))
                }
                Some((name, args)) => match self
                    .prepare_call(&q.auth, &name, None, args, q.op, q.now_ms, seq, first)
                    .await
                {
                    Ok(PreparedCall::Answered(r)) => Ok((Answer::Returned(r), None)),
                    Ok(PreparedCall::Applied(r, a)) => Ok((Answer::Returned(r), Some(a))),
                    Err(e) => Err(e),
                },
                None => match self.apply_mutation(&q.auth, q.op, q.ops, q.now_ms, seq, first) {
                    Ok(Prepared::Answered(ack)) => Ok((Answer::Ack(ack), None)),
                    Ok(Prepared::Applied(a)) => Ok((Answer::Ack(a.ack()), Some(a))),
                    Err(e) => Err(e),
                },
            };
            match prepared {
                Ok((answer, None)) => answers.push((q.conn, Ok(answer))),
                Ok((answer, Some(a))) => {
                    out.extend(self.fan_out(&a.changes, seq).await);
                    if !a.op.is_empty() {
                        known.insert(a.op.clone(), seq);
                    }
                    if let Answer::Returned(r) = &answer {
                        results.push((r.op.clone(), r.value.clone()));
                    }
                    answers.push((q.conn, Ok(answer)));
                    batch.push(a);
                }
                Err(mut e) => {
                    e.op = Some(op);
                    answers.push((q.conn, Err(e)));
                }
            }
        }
        if let Err(e) = self.record(&batch) {
            for key in &self.dirty {
                if let Some(w) = self.windows.get_mut(key) {
                    w.resync = true;
                }
            }
            for (_, answer) in &mut answers {
                if let Ok(a) = answer {
                    let (seq, dup) = a.seq_dup();
                    if !dup && seq > base {
                        let mut e = e.clone();
                        e.op = Some(a.op().to_owned());
                        *answer = Err(e);
                    }
                }
            }
        } else {
            let kept: Vec<(&String, &Value)> = results.iter().map(|(o, v)| (o, v)).collect();
            self.save_results(&kept);
        }
        for (conn, answer) in answers {
            let msg = match answer {
                Ok(a) => a.into_msg(),
                Err(e) => ServerMsg::Err(e),
            };
            self.pending.push(Outbound::To(conn, msg));
        }
    }
}
