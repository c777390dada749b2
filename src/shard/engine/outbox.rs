//! Write-behind to D1: the outbox drained a batch at a time, backing off
//! after failures, and its numbers for operators.

use serde_json::json;

use super::ShardEngine;
use crate::storage::{SqlConn, StorageError};
use crate::store::{OutboxBatch, OutboxChange, StoreError};

/// Meta key: failed drain attempts in a row (reset by a success).
pub const OUTBOX_ATTEMPTS: &str = "outbox_attempts";

/// Meta key: the last drain error, until a drain succeeds.
pub const OUTBOX_ERROR: &str = "outbox_error";

/// Outbox entries read per drain; `OutboxBatch::split` keeps what fits one
/// D1 batch.
const OUTBOX_READ: usize = 1000;

/// How long to wait before drain attempt `attempts + 1` after `attempts`
/// failures in a row: 1 s, doubling, at most 60 s.
pub fn outbox_backoff_ms(attempts: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).clamp(0, 6) as u32;
    (1000i64 << doublings).min(60_000)
}

impl<C: SqlConn> ShardEngine<C> {
    /// The oldest outbox entries that fit one D1 batch, as an
    /// [`OutboxBatch`] dated `at` (RFC 3339), and the position of its last
    /// entry (pass it to [`Self::outbox_drained`] once applied). `None`
    /// when the outbox is empty.
    pub fn outbox_batch(
        &self,
        at: Option<String>,
    ) -> Result<Option<(OutboxBatch, (u64, u64))>, StoreError> {
        let entries = self.store.outbox_oldest(OUTBOX_READ)?;
        // The member count for the room list rides with the first batch
        // (docs/rooms.md), or alone when no row changed.
        let room = self.room_listing()?;
        if entries.is_empty() {
            return Ok(room.map(|room| {
                let mut batch = OutboxBatch::new(at, Vec::new());
                batch.room = Some(room);
                (batch, (0, 0))
            }));
        }
        let changes = entries
            .iter()
            .map(|e| OutboxChange {
                shard: self.shard.clone(),
                entity: e.entity.clone(),
                id: e.id.clone(),
                seq: e.seq as i64,
                row: e.row.clone(),
            })
            .collect();
        let mut first = OutboxBatch::new(at, changes)
            .split(&self.manifest)?
            .into_iter()
            .next()
            .unwrap_or_default();
        first.room = room;
        let Some(last) = first.changes.len().checked_sub(1).map(|i| &entries[i]) else {
            return Ok(None);
        };
        let through = (last.seq, last.idx);
        Ok(Some((first, through)))
    }

    /// A batch from [`Self::outbox_batch`] was applied: its entries go and
    /// the failure count resets.
    pub fn outbox_drained(&self, through: (u64, u64)) -> Result<(), StorageError> {
        self.store.outbox_delete_through(through.0, through.1)?;
        let meta = self.store.meta()?;
        meta.set(OUTBOX_ATTEMPTS, crate::sql::SqlValue::Integer(0))?;
        meta.set(OUTBOX_ERROR, crate::sql::SqlValue::Null)
    }

    /// A drain failed: records the error and returns the failures in a row
    /// (see [`outbox_backoff_ms`]).
    pub fn outbox_failed(&self, error: &str) -> Result<i64, StorageError> {
        let meta = self.store.meta()?;
        meta.set_text(OUTBOX_ERROR, error)?;
        meta.add(OUTBOX_ATTEMPTS, 1)
    }

    /// Whether a commit added to the outbox since the last time this was
    /// asked (true on a new wake).
    pub fn take_outbox_added(&mut self) -> bool {
        std::mem::take(&mut self.outbox_added)
    }

    /// Whether a commit since the last time this was asked recorded
    /// changes: the outbox then surely holds entries (one per changed
    /// row), so no count is needed to know a drain is owed. Asked after
    /// every event, so it speaks for that event's commits only.
    pub fn take_outbox_filled(&mut self) -> bool {
        std::mem::take(&mut self.outbox_filled)
    }

    /// Makes the next [`ShardEngine::take_outbox_added`] true (a look at
    /// the outbox failed and must be made again).
    pub fn note_outbox_added(&mut self) {
        self.outbox_added = true;
    }

    /// Entries waiting for D1.
    pub fn outbox_depth(&self) -> Result<u64, StorageError> {
        Ok(self.store.outbox_depth()?.0)
    }

    /// `{depth, lag_ms, attempts, last_error?}`: `lag_ms` is the age of the
    /// oldest waiting entry (0 when empty).
    pub fn outbox_stats(&self, now_ms: i64) -> Result<serde_json::Value, StorageError> {
        let (depth, oldest) = self.store.outbox_depth()?;
        let meta = self.store.meta()?;
        let mut v = json!({
            "depth": depth,
            "lag_ms": oldest.map(|t| (now_ms - t).max(0)).unwrap_or(0),
            "attempts": meta.int(OUTBOX_ATTEMPTS)?,
        });
        if let Some(e) = meta.text(OUTBOX_ERROR)? {
            v["last_error"] = json!(e);
        }
        Ok(v)
    }
}
