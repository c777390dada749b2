//! Scheduled functions (docs/functions.md, "Scheduled functions"): the
//! mutations a function scheduled, stored in its commit, run when due as
//! the caller that scheduled them. Each run is a `call` with the op id
//! `sched:{id}`, and the entry is deleted in the same event: after a crash
//! either both happened or neither did, and a run is never applied twice.

use super::{Outbound, ShardEngine};
use crate::functions::FnKind;
use crate::storage::{SqlConn, StorageError};

/// Due calls run by one timer event, at most (the rest at once after).
const RUN_AT_ONCE: usize = 50;

impl<C: SqlConn> ShardEngine<C> {
    /// When the next scheduled call is due, if a commit (or the wake)
    /// changed what is scheduled since the last time this was asked;
    /// `Ok(None)` also when nothing changed.
    pub fn schedule_update(&mut self) -> Result<Option<Option<i64>>, StorageError> {
        if !std::mem::take(&mut self.schedule_changed) {
            return Ok(None);
        }
        self.store.next_scheduled().map(Some)
    }

    /// Runs the scheduled calls due at `now_ms`. Returns what to send and,
    /// for the log, each failed run (`id name: error`); a failed run is
    /// not retried (its mutation changed nothing).
    pub async fn run_scheduled(&mut self, now_ms: i64) -> (Vec<Outbound>, Vec<String>) {
        let mut out = self.flush().await;
        let mut failed = Vec::new();
        let due = match self.store.due_scheduled(now_ms, RUN_AT_ONCE) {
            Ok(d) => d,
            Err(e) => return (out, vec![format!("reading the scheduled calls: {e}")]),
        };
        // More may be due, or later ones remain: the alarm is set again.
        self.schedule_changed = true;
        for call in due {
            let op = format!("sched:{}", call.id);
            let ran = self
                .call(
                    &call.auth,
                    &call.name,
                    call.args,
                    Some(op),
                    Some(FnKind::Mutation),
                    now_ms,
                )
                .await;
            match ran {
                Ok((_, diffs)) => out.extend(diffs),
                Err(e) => failed.push(format!(
                    "{} {}: {} {}",
                    call.id, call.name, e.code, e.message
                )),
            }
            if let Err(e) = self.store.delete_scheduled(&[call.id.clone()]) {
                failed.push(format!("{}: deleting it after its run: {e}", call.id));
            }
        }
        out.extend(self.flush().await);
        (out, failed)
    }

    /// Something outside a call changed what is scheduled (a cancel over
    /// HTTP): the alarm is set again after this event.
    pub fn schedule_changed(&mut self) {
        self.schedule_changed = true;
    }

    /// Calls waiting to run.
    pub fn scheduled_count(&self) -> Result<u64, StorageError> {
        self.store.count_scheduled()
    }
}
