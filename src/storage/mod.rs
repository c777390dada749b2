//! The one storage interface the shard engine needs: synchronous SQL.
//!
//! Durable Object SQLite storage is synchronous (`ctx.storage.sql.exec`),
//! and so is rusqlite, so engine code that stores rows runs unchanged on
//! both: in the Worker and in native tests against real SQLite.
//!
//! ```
//! # #[cfg(feature = "sqlite")] {
//! use pylon_workers::storage::{SqlConn, SqliteConn};
//! use pylon_workers::sql::SqlValue;
//! let db = SqliteConn::open_in_memory().unwrap();
//! db.exec("CREATE TABLE t (x INTEGER)", &[]).unwrap();
//! db.exec("INSERT INTO t VALUES (?)", &[SqlValue::Integer(7)]).unwrap();
//! assert_eq!(db.exec("SELECT x FROM t", &[]).unwrap(), vec![vec![SqlValue::Integer(7)]]);
//! # }
//! ```

use crate::sql::SqlValue;

pub mod meta;
pub mod meter;

pub use meter::SqlMeter;

/// A statement that failed, with the database's own message. The message
/// and statement are for the log only: they name tables and columns, so
/// answers to clients never carry them (docs/policies.md).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("SQL failed: {message} (in `{statement}`)")]
pub struct StorageError {
    /// What kind of failure, from SQLite's result code where the
    /// connection reports one (see [`StorageErrorKind`]).
    pub kind: StorageErrorKind,
    pub message: String,
    /// The statement, cut to a readable length.
    pub statement: String,
}

/// The failures the engine treats differently from "storage broke".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// A UNIQUE or PRIMARY KEY constraint refused the statement
    /// (`SQLITE_CONSTRAINT_UNIQUE`, `SQLITE_CONSTRAINT_PRIMARYKEY`).
    UniqueViolation,
    /// Anything else.
    #[default]
    Other,
}

impl StorageError {
    pub fn new(message: impl Into<String>, statement: &str) -> Self {
        let statement = statement.chars().take(200).collect();
        Self {
            kind: StorageErrorKind::Other,
            message: message.into(),
            statement,
        }
    }

    /// The same error, of kind `kind`.
    pub fn with_kind(mut self, kind: StorageErrorKind) -> Self {
        self.kind = kind;
        self
    }

    /// Whether SQLite refused the statement for a UNIQUE or PRIMARY KEY clash.
    pub fn is_unique_violation(&self) -> bool {
        self.kind == StorageErrorKind::UniqueViolation
    }

    /// Whether the statement names a table the database does not have (a
    /// D1 whose migrations were not applied). SQLite reports this only as
    /// the generic `SQLITE_ERROR` with the text `no such table: T`, and D1
    /// hands on nothing but that text (`D1_ERROR: no such table: T:
    /// SQLITE_ERROR`), so the text is the one thing to recognise.
    pub fn is_missing_table(&self) -> bool {
        self.message.contains("no such table")
    }
}

/// Synchronous SQL over one database. Rows come back positionally, in the
/// order of the statement's result columns.
pub trait SqlConn {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError>;

    /// [`SqlConn::exec`] for a statement that finds out whether a table
    /// exists by using it (a new object's first wake, where creating the
    /// table up front would cost every later wake a statement): a missing
    /// table is an expected answer, so a connection that logs its failed
    /// statements does not log that one. Any other failure is logged as
    /// by `exec`. Only for those probes.
    fn probe(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        self.exec(sql, params)
    }

    /// What the statements run on this connection (and its clones) cost
    /// so far, if it counts them ([`meter`]).
    fn meter(&self) -> Option<SqlMeter> {
        None
    }
}

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod sqlite_conn;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub use sqlite_conn::SqliteConn;

/// A shared handle is a connection too (the host and its object each hold one).
impl<T: SqlConn + ?Sized> SqlConn for std::rc::Rc<T> {
    fn exec(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        (**self).exec(sql, params)
    }

    fn probe(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        (**self).probe(sql, params)
    }

    fn meter(&self) -> Option<SqlMeter> {
        (**self).meter()
    }
}
