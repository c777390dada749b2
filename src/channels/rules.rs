//! The manifest's `channels` section: which channels exist, who may
//! publish to and subscribe to each, and how much history each keeps. The
//! first rule whose pattern fits a name governs it; a name no rule fits is
//! no channel (`UNKNOWN_CHANNEL`). Patterns are the shard rules' patterns
//! (docs/auth.md): literal text, `*`, and `{userId}` / `{tenantId}`,
//! which admit a caller only to the names holding its own value.
//!
//! ```json
//! "channels": [
//!   { "pattern": "news", "publish": "admin", "subscribe": "anyone" },
//!   { "pattern": "chat:*", "publish": "signedIn", "subscribe": "signedIn",
//!     "history": { "count": 500, "ageMs": 86400000 } },
//!   { "pattern": "inbox:{userId}", "publish": "admin", "subscribe": "signedIn" }
//! ]
//! ```

use serde::Deserialize;

use super::ChannelError;
use crate::auth::Pattern;
use crate::manifest::Who;
use crate::policy::AuthContext;

/// Messages kept per channel when the rule does not say, and the most.
pub const DEFAULT_KEEP_COUNT: i64 = 100;
pub const MAX_KEEP_COUNT: i64 = 10_000;
/// How long a message is kept when the rule does not say (a day), the
/// least (a second) and the most (30 days).
pub const DEFAULT_KEEP_MS: i64 = 86_400_000;
pub const MIN_KEEP_MS: i64 = 1_000;
pub const MAX_KEEP_MS: i64 = 30 * 86_400_000;

/// How much history a channel keeps: the last `count` messages, each for
/// at most `age_ms` after it was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    pub count: i64,
    pub age_ms: i64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            count: DEFAULT_KEEP_COUNT,
            age_ms: DEFAULT_KEEP_MS,
        }
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelRule {
    pub pattern: Pattern,
    pub publish: Who,
    pub subscribe: Who,
    pub history: Retention,
}

/// What a caller asks to do on a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Publish,
    Subscribe,
}

impl Op {
    fn doing(self, name: &str) -> String {
        match self {
            Op::Publish => format!("publishing to channel {name:?}"),
            Op::Subscribe => format!("subscribing to channel {name:?}"),
        }
    }
}

/// The rules, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ChannelRules {
    pub rules: Vec<ChannelRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawHistory {
    count: Option<i64>,
    age_ms: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    pattern: String,
    #[serde(default)]
    publish: Who,
    #[serde(default)]
    subscribe: Who,
    history: Option<RawHistory>,
}

impl ChannelRules {
    /// Loads the section (an array of rules); each problem is `(path, reason)`.
    pub fn load(section: &serde_json::Value) -> Result<ChannelRules, Vec<(String, String)>> {
        let raw: Vec<RawRule> = serde_json::from_value(section.clone())
            .map_err(|e| vec![("channels".to_owned(), e.to_string())])?;
        let mut problems = Vec::new();
        let mut rules = Vec::new();
        for (i, r) in raw.into_iter().enumerate() {
            let at = format!("channels[{i}]");
            let pattern = match Pattern::parse(&r.pattern) {
                Ok(p) => p,
                Err(e) => {
                    problems.push((format!("{at}.pattern"), e));
                    continue;
                }
            };
            let mut history = Retention::default();
            if let Some(h) = r.history {
                if let Some(n) = h.count {
                    if !(1..=MAX_KEEP_COUNT).contains(&n) {
                        let m = format!("{n}: 1 to {MAX_KEEP_COUNT} messages");
                        problems.push((format!("{at}.history.count"), m));
                    }
                    history.count = n;
                }
                if let Some(ms) = h.age_ms {
                    if !(MIN_KEEP_MS..=MAX_KEEP_MS).contains(&ms) {
                        let m = format!("{ms}: {MIN_KEEP_MS} to {MAX_KEEP_MS} ms");
                        problems.push((format!("{at}.history.ageMs"), m));
                    }
                    history.age_ms = ms;
                }
            }
            rules.push(ChannelRule {
                pattern,
                publish: r.publish,
                subscribe: r.subscribe,
                history,
            });
        }
        match problems.is_empty() {
            true => Ok(ChannelRules { rules }),
            false => Err(problems),
        }
    }

    /// The rule that governs `name`: the first whose pattern fits it.
    pub fn rule(&self, name: &str) -> Result<&ChannelRule, ChannelError> {
        super::check_name(name)?;
        self.rules
            .iter()
            .find(|r| r.pattern.fits(name))
            .ok_or_else(|| ChannelError::Unknown(name.to_owned()))
    }

    /// Whether `caller` may `op` on channel `name`: its rule's `publish` or
    /// `subscribe`, and for a pattern with a placeholder, the name holding
    /// the caller's own value (admins always may).
    pub fn check(
        &self,
        op: Op,
        name: &str,
        caller: &AuthContext,
    ) -> Result<&ChannelRule, ChannelError> {
        let rule = self.rule(name)?;
        let who = match op {
            Op::Publish => rule.publish,
            Op::Subscribe => rule.subscribe,
        };
        let own =
            caller.is_admin || !rule.pattern.has_bindings() || rule.pattern.admits(name, caller);
        if who.allows(caller) && own {
            return Ok(rule);
        }
        Err(match caller.user_id.is_none() && !caller.is_admin {
            true => ChannelError::Unauthorized(op.doing(name)),
            false => ChannelError::Forbidden(op.doing(name)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ChannelRules {
        ChannelRules::load(&json!([
            {"pattern": "news", "publish": "admin", "subscribe": "anyone"},
            {"pattern": "chat:*", "publish": "signedIn", "subscribe": "signedIn",
             "history": {"count": 5, "ageMs": 60000}},
            {"pattern": "inbox:{userId}", "subscribe": "signedIn"},
        ]))
        .unwrap()
    }

    #[test]
    fn the_first_fitting_rule_governs() {
        let r = rules();
        assert_eq!(
            r.rule("chat:1").unwrap().history,
            Retention {
                count: 5,
                age_ms: 60_000
            }
        );
        assert_eq!(r.rule("news").unwrap().history, Retention::default());
        assert_eq!(r.rule("other").unwrap_err().code(), "UNKNOWN_CHANNEL");
        assert_eq!(r.rule("bad name").unwrap_err().code(), "BAD_CHANNEL_NAME");
        assert_eq!(
            ChannelRules::default().rule("news").unwrap_err().code(),
            "UNKNOWN_CHANNEL"
        );
    }

    #[test]
    fn who_may_publish_and_subscribe() {
        let r = rules();
        let (anon, u1, u2) = (
            AuthContext::anonymous(),
            AuthContext::user("u1"),
            AuthContext::user("u2"),
        );
        let admin = AuthContext {
            is_admin: true,
            ..Default::default()
        };
        assert!(r.check(Op::Subscribe, "news", &anon).is_ok());
        assert_eq!(
            r.check(Op::Publish, "news", &anon).unwrap_err().code(),
            "UNAUTHORIZED"
        );
        assert_eq!(
            r.check(Op::Publish, "news", &u1).unwrap_err().code(),
            "FORBIDDEN"
        );
        assert!(r.check(Op::Publish, "news", &admin).is_ok());
        assert!(r.check(Op::Publish, "chat:x", &u1).is_ok());
        assert!(r.check(Op::Subscribe, "inbox:u1", &u1).is_ok());
        assert_eq!(
            r.check(Op::Subscribe, "inbox:u1", &u2).unwrap_err().code(),
            "FORBIDDEN"
        );
        assert!(r.check(Op::Subscribe, "inbox:u1", &admin).is_ok());
        assert_eq!(
            r.check(Op::Publish, "inbox:u1", &u1).unwrap_err().code(),
            "FORBIDDEN"
        );
    }

    #[test]
    fn each_problem_names_its_place() {
        let bad = ChannelRules::load(&json!([
            {"pattern": "a b"},
            {"pattern": "c", "history": {"count": 0, "ageMs": 5}},
        ]))
        .unwrap_err();
        let paths: Vec<&str> = bad.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "channels[0].pattern",
                "channels[1].history.count",
                "channels[1].history.ageMs"
            ]
        );
        let typo = ChannelRules::load(&json!([{"pattern": "c", "publsh": "anyone"}])).unwrap_err();
        assert!(typo[0].1.contains("unknown field"), "{typo:?}");
        assert!(ChannelRules::load(&json!({"pattern": "c"})).is_err());
    }
}
