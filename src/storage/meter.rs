//! What an object's SQL costs, counted where the connection can count it:
//! statements run, rows read and rows written (the units the platform
//! bills a Durable Object's SQLite storage in). The host reports the
//! count of the current wake in `GET …/stats` (docs/host.md).
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::storage::{SqlConn, SqliteConn};
//! use pylon_workers::sql::SqlValue;
//! let db = SqliteConn::open_in_memory().unwrap();
//! db.exec("CREATE TABLE t (x INTEGER)", &[]).unwrap();
//! db.exec("INSERT INTO t VALUES (1), (2)", &[]).unwrap();
//! db.exec("SELECT x FROM t", &[]).unwrap();
//! let m = db.meter().unwrap();
//! assert_eq!((m.statements, m.rows_written, m.rows_read), (3, 2, 2));
//! # }
//! ```

use std::cell::Cell;

/// Counts since a connection was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SqlMeter {
    pub statements: u64,
    /// Durable Object SQL: the cursors' `rowsRead` (rows scanned). rusqlite:
    /// the rows statements returned (SQLite keeps no count of rows scanned).
    pub rows_read: u64,
    /// Durable Object SQL: the cursors' `rowsWritten` (index entries
    /// included). rusqlite: rows inserted, updated or deleted
    /// (`total_changes`).
    pub rows_written: u64,
}

impl SqlMeter {
    /// What was counted after `earlier`.
    pub fn since(self, earlier: SqlMeter) -> SqlMeter {
        SqlMeter {
            statements: self.statements.saturating_sub(earlier.statements),
            rows_read: self.rows_read.saturating_sub(earlier.rows_read),
            rows_written: self.rows_written.saturating_sub(earlier.rows_written),
        }
    }
}

/// A running [`SqlMeter`] a connection adds each statement to.
#[derive(Debug, Default)]
pub struct MeterCell(Cell<SqlMeter>);

impl MeterCell {
    /// One statement that read and wrote these many rows.
    pub fn add(&self, rows_read: u64, rows_written: u64) {
        let m = self.0.get();
        self.0.set(SqlMeter {
            statements: m.statements + 1,
            rows_read: m.rows_read + rows_read,
            rows_written: m.rows_written + rows_written,
        });
    }

    pub fn get(&self) -> SqlMeter {
        self.0.get()
    }
}
