//! The shard rules compiled for one caller: which shard names the caller
//! may enter, as a condition a database checks on a name column (the cold
//! path's `_shard`, the directory's `shard`) instead of asking
//! [`AuthConfig::admit`] row by row.
//!
//! ```
//! use pylon_workers::auth::{AuthConfig, Pattern, ShardRule};
//! use pylon_workers::policy::AuthContext;
//! let config = AuthConfig {
//!     shards: vec![
//!         ShardRule::new(Pattern::parse("team:{tenantId}").unwrap()),
//!         ShardRule::new(Pattern::parse("*").unwrap()).allow_anonymous(true),
//!     ],
//!     ..AuthConfig::default()
//! };
//! let acme = AuthContext::user("u1").with_tenant("acme");
//! let access = config.shard_access(Some(&acme));
//! // team:acme, or anything no earlier rule fits.
//! assert_eq!(access.clauses()[0].glob, "team:acme");
//! assert_eq!(access.clauses()[1].glob, "*");
//! assert_eq!(access.clauses()[1].except, ["team:?*"]);
//! assert!(access.admits("team:acme") && access.admits("lobby") && !access.admits("team:evil"));
//! ```
//!
//! The rule that governs a name is the first whose pattern fits it, so rule
//! `i` admits a name when its pattern admits the caller there and no
//! earlier rule fits it: `name GLOB admits_i AND NOT name GLOB fits_j` for
//! each earlier `j`. A rule that does not let the caller in contributes
//! nothing; admins may enter every name some rule fits. GLOBs are SQLite's
//! (`*`, `?`); their literal text is shard-name characters only, so a
//! database can take them as literals.

use super::config::{AuthConfig, ShardRule};
use crate::policy::AuthContext;
use crate::query::glob;

/// The names a caller may enter: those of any clause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardAccess {
    clauses: Vec<AccessClause>,
}

/// Names matching `glob` and none of `except` (SQLite GLOB syntax).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessClause {
    pub glob: String,
    pub except: Vec<String>,
}

impl ShardAccess {
    /// In order of the rules; empty: no name at all.
    pub fn clauses(&self) -> &[AccessClause] {
        &self.clauses
    }

    /// Whether every name is admitted (no condition needed).
    pub fn is_everything(&self) -> bool {
        self.clauses
            .iter()
            .any(|c| c.glob == "*" && c.except.is_empty())
    }

    /// The same condition evaluated in memory.
    pub fn admits(&self, shard: &str) -> bool {
        self.clauses
            .iter()
            .any(|c| glob(&c.glob, shard) && !c.except.iter().any(|e| glob(e, shard)))
    }
}

/// The caller as [`AuthConfig::admit`] takes it: `None` for an anonymous
/// one. Every token names a user, so a context without a user id that is
/// not an admin came without a token.
pub fn token_caller(caller: &AuthContext) -> Option<&AuthContext> {
    (caller.user_id.is_some() || caller.is_admin).then_some(caller)
}

impl AuthConfig {
    /// The shards `caller` (`None`: no token) may enter; agrees with
    /// [`AuthConfig::admit`] on every shard name.
    pub fn shard_access(&self, caller: Option<&AuthContext>) -> ShardAccess {
        let rules = self.rules();
        let mut clauses: Vec<AccessClause> = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let Some(glob) = admits_glob(rule, caller) else {
                continue;
            };
            let mut except: Vec<String> = Vec::new();
            if !caller.is_some_and(|c| c.is_admin) {
                for earlier in &rules[..i] {
                    let e = earlier.pattern.fits_glob();
                    if may_overlap(&e, &glob) && !except.contains(&e) {
                        except.push(e);
                    }
                }
            }
            // An earlier `*` leaves this rule nothing to govern.
            if except.iter().any(|e| e == "*") {
                continue;
            }
            let clause = AccessClause { glob, except };
            if !clauses.contains(&clause) {
                clauses.push(clause);
            }
        }
        ShardAccess { clauses }
    }

    /// [`AuthConfig::admit`] for a caller as the cold path has it (see
    /// [`token_caller`]).
    pub fn admit_caller(&self, shard: &str, caller: &AuthContext) -> Result<(), super::AuthError> {
        self.admit(shard, token_caller(caller))
    }
}

/// The names `rule` lets `caller` into, if any (see `AuthConfig::admit`).
/// Admins: every name the rule fits (it may govern them or not: the union
/// over all rules is every name some rule fits, which is what they get).
fn admits_glob(rule: &ShardRule, caller: Option<&AuthContext>) -> Option<String> {
    match caller {
        None => {
            let open =
                rule.allow_anonymous && rule.roles.is_empty() && !rule.pattern.has_bindings();
            open.then(|| rule.pattern.fits_glob())
        }
        Some(c) if c.is_admin => Some(rule.pattern.fits_glob()),
        Some(c) => {
            if !rule.roles.is_empty() && !rule.roles.iter().any(|r| c.has_role(r)) {
                return None;
            }
            rule.pattern.admits_glob(c)
        }
    }
}

/// The literal text before the first wildcard and after the last one.
fn literal_ends(g: &str) -> (&str, &str) {
    let wild = |c: char| c == '*' || c == '?';
    let head = g.find(wild).map_or(g, |i| &g[..i]);
    let tail = g.rfind(wild).map_or(g, |i| &g[i + 1..]);
    (head, tail)
}

/// False only when no name can match both GLOBs: a name matching both
/// starts with both literal heads (so one is a prefix of the other) and
/// ends with both literal tails. Leaving out an exclusion that cannot
/// matter keeps the condition short; keeping one is always correct.
fn may_overlap(a: &str, b: &str) -> bool {
    let ((ah, at), (bh, bt)) = (literal_ends(a), literal_ends(b));
    (ah.starts_with(bh) || bh.starts_with(ah)) && (at.ends_with(bt) || bt.ends_with(at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Pattern;

    fn rule(p: &str) -> ShardRule {
        ShardRule::new(Pattern::parse(p).unwrap())
    }

    #[test]
    fn overlap_is_sound_on_literal_ends() {
        assert!(!may_overlap("team:?*", "user:u1"));
        assert!(may_overlap("team:?*", "team:acme"));
        assert!(may_overlap("*", "user:u1"));
        assert!(!may_overlap("ab", "abc"));
        assert!(!may_overlap("*-docs", "*-chat"));
        assert!(may_overlap("a*z", "ab*"));
    }

    #[test]
    fn an_earlier_star_shadows_the_rest() {
        let config = AuthConfig {
            shards: vec![rule("*").allow_anonymous(true), rule("team:{tenantId}")],
            ..AuthConfig::default()
        };
        let acme = AuthContext::user("u").with_tenant("acme");
        let access = config.shard_access(Some(&acme));
        assert!(access.is_everything());
        assert_eq!(access.clauses().len(), 1);
    }

    #[test]
    fn no_rules_is_one_star_rule() {
        let open = AuthConfig {
            anonymous: true,
            ..AuthConfig::default()
        };
        assert!(open.shard_access(None).is_everything());
        let closed = AuthConfig::default();
        assert!(closed.shard_access(None).clauses().is_empty());
        assert!(closed
            .shard_access(Some(&AuthContext::user("u")))
            .is_everything());
    }
}
