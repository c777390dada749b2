//! The shard rules as SQL: a caller's [`ShardAccess`] as a filter on a
//! column of shard names (`_shard` of every D1 table, `shard` of the
//! directory), ANDed into the cold path's statements so that the database
//! returns only rows of shards the caller may enter.
//!
//! ```
//! use pylon_workers::auth::{AuthConfig, Pattern, ShardRule};
//! use pylon_workers::policy::AuthContext;
//! use pylon_workers::store::shard_access::{shard_condition, shard_filter};
//! let config = AuthConfig {
//!     shards: vec![
//!         ShardRule::new(Pattern::parse("team:{tenantId}").unwrap()),
//!         ShardRule::new(Pattern::parse("*").unwrap()).allow_anonymous(true),
//!     ],
//!     ..AuthConfig::default()
//! };
//! let acme = AuthContext::user("u1").with_tenant("acme");
//! let (sql, params) = shard_condition(&config.shard_access(Some(&acme)), "_shard").unwrap();
//! assert_eq!(sql, r#"("_shard" GLOB 'team:acme' OR (("_shard" GLOB 'team:?*') IS NOT 1))"#);
//! assert!(params.is_empty()); // the GLOBs are literals: they cost no parameter
//! assert!(shard_filter(&config.shard_access(Some(&AuthContext::admin())), "_shard").is_none());
//! ```
//!
//! Cost: a rule with a literal prefix (`team:acme`, `team:acme:*`) is a
//! range of the primary key `(_shard, id)`; a `*` rule scans (see
//! docs/d1.md, "Shard rules on the cold path").

use crate::auth::ShardAccess;
use crate::query::Filter;
use crate::sql::SqlValue;

/// The filter on `column` admitting what `access` admits; `None` when it
/// admits every name (no condition needed). An access with no clause is
/// the filter that matches nothing.
pub fn shard_filter(access: &ShardAccess, column: &str) -> Option<Filter> {
    if access.is_everything() {
        return None;
    }
    let glob = |pattern: &str| Filter::Glob {
        field: column.to_owned(),
        pattern: pattern.to_owned(),
    };
    let clauses = access
        .clauses()
        .iter()
        .map(|c| {
            // `GLOB '*'` holds for every name: only the exclusions remain.
            let mut parts = if c.glob == "*" {
                Vec::new()
            } else {
                vec![glob(&c.glob)]
            };
            parts.extend(c.except.iter().map(|e| Filter::Not(Box::new(glob(e)))));
            if parts.len() == 1 {
                parts.remove(0)
            } else {
                Filter::And(parts)
            }
        })
        .collect();
    Some(Filter::Or(clauses))
}

/// [`shard_filter`] as an SQL condition and its parameters.
pub fn shard_condition(access: &ShardAccess, column: &str) -> Option<(String, Vec<SqlValue>)> {
    shard_filter(access, column).map(|f| crate::query::filter_sql(&f))
}
