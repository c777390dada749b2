//! [`D1Executor`]: asynchronous SQL with D1's batch semantics, and its
//! native implementations.
//!
//! The trait uses `async fn` without a `Send` bound: Workers run one
//! request at a time on one thread, and the D1 binding's futures hold
//! JavaScript values, which are not `Send`. Native callers drive the
//! futures with any executor (the rusqlite ones never wait).
//!
//! ```
//! # #[cfg(feature = "sqlite")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use pylon_workers::store::{D1Executor, RusqliteExecutor, Statement};
//! use pylon_workers::sql::SqlValue;
//! let db = RusqliteExecutor::open_in_memory().unwrap();
//! db.execute("CREATE TABLE t (x INTEGER NOT NULL)", &[]).await.unwrap();
//! // One batch is one transaction: the failing second statement undoes the first.
//! let bad = vec![
//!     Statement::new("INSERT INTO t VALUES (?)", vec![SqlValue::Integer(1)]),
//!     Statement::new("INSERT INTO t VALUES (NULL)", vec![]),
//! ];
//! assert!(db.batch(bad).await.is_err());
//! assert!(db.query("SELECT x FROM t", &[]).await.unwrap().is_empty());
//! # }
//! # #[cfg(not(feature = "sqlite"))] fn main() {}
//! ```

use crate::sql::SqlValue;
use crate::storage::StorageError;

/// One SQL statement with its positional (`?`) parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Self {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

/// Asynchronous SQL over one D1 (or D1-like) database.
#[allow(async_fn_in_trait)]
pub trait D1Executor {
    /// Runs one statement; the number of rows it changed.
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError>;

    /// Runs one statement; its rows, positionally in result-column order.
    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StorageError>;

    /// Runs the statements in order as ONE transaction (D1 `batch`): all
    /// apply or, if any fails, none. The rows each statement changed.
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError>;
}

impl<E: D1Executor + ?Sized> D1Executor for &E {
    async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
        (**self).execute(sql, params).await
    }
    async fn query(
        &self,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
        (**self).query(sql, params).await
    }
    async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError> {
        (**self).batch(statements).await
    }
}

/// [`D1Executor`] over a rusqlite connection, for native tests, benchmarks
/// and tools: `batch` is a real transaction.
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
pub struct RusqliteExecutor(pub crate::storage::SqliteConn);

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod rusqlite_impl {
    use super::*;
    use crate::storage::{SqlConn, SqliteConn};

    impl RusqliteExecutor {
        pub fn open_in_memory() -> rusqlite::Result<Self> {
            SqliteConn::open_in_memory().map(Self)
        }

        pub fn open(path: impl AsRef<std::path::Path>) -> rusqlite::Result<Self> {
            SqliteConn::open(path).map(Self)
        }

        /// The rusqlite connection.
        pub fn connection(&self) -> &rusqlite::Connection {
            &self.0 .0
        }

        /// Runs a script of `;`-separated statements (a migration file).
        pub fn execute_script(&self, sql: &str) -> Result<(), StorageError> {
            self.connection()
                .execute_batch(sql)
                .map_err(|e| StorageError::new(e.to_string(), sql))
        }

        fn rows(&self, sql: &str, params: &[SqlValue]) -> Result<Vec<Vec<SqlValue>>, StorageError> {
            // The SqlConn implementation does the value mapping.
            self.0.exec(sql, params)
        }

        fn run(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
            let mut stmt = self
                .connection()
                .prepare_cached(sql)
                .map_err(|e| StorageError::new(e.to_string(), sql))?;
            stmt.execute(rusqlite::params_from_iter(params.iter()))
                .map(|n| n as u64)
                .map_err(|e| StorageError::new(e.to_string(), sql))
        }
    }

    impl D1Executor for RusqliteExecutor {
        async fn execute(&self, sql: &str, params: &[SqlValue]) -> Result<u64, StorageError> {
            self.run(sql, params)
        }

        async fn query(
            &self,
            sql: &str,
            params: &[SqlValue],
        ) -> Result<Vec<Vec<SqlValue>>, StorageError> {
            self.rows(sql, params)
        }

        async fn batch(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StorageError> {
            let tx = self
                .connection()
                .unchecked_transaction()
                .map_err(|e| StorageError::new(e.to_string(), "BEGIN"))?;
            let mut out = Vec::with_capacity(statements.len());
            for s in &statements {
                out.push(self.run(&s.sql, &s.params)?); // drop(tx) rolls back
            }
            tx.commit()
                .map_err(|e| StorageError::new(e.to_string(), "COMMIT"))?;
            Ok(out)
        }
    }
}
