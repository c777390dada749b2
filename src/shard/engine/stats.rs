//! The shard's numbers for operators, read from storage and the live state.

use serde_json::json;

use super::ShardEngine;
use crate::storage::{SqlConn, StorageError};

impl<C: SqlConn> ShardEngine<C> {
    /// Numbers for operators (`GET .../stats`).
    pub fn stats(&self) -> Result<serde_json::Value, StorageError> {
        let mut rows = serde_json::Map::new();
        for e in &self.manifest.entities {
            rows.insert(e.name.clone(), json!(self.store.count_rows(e)?));
        }
        let log = self.store.log_range()?;
        Ok(json!({
            "shard": self.shard,
            "connections": self.conns.len(),
            "seq": self.store.seq()?,
            "subscriptions": self.store.count_subs()?,
            "live_subscriptions": self.subs.len(),
            "live_windows": self.windows.len(),
            "rows": rows,
            "log": { "oldest": log.map(|l| l.0), "newest": log.map(|l| l.1) },
        }))
    }
}
