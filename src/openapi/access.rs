//! Who may call an operation, read from the manifest: its `security`
//! (credentials required, or optional where anonymous callers are let in)
//! and a sentence for its description.

use serde_json::{Map, Value};

use super::json::object;
use crate::auth::ShardRule;
use crate::manifest::{Manifest, Who};

/// The rule an operation's caller is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credentials are read (health, this document, sign-in).
    Public,
    /// The manifest's shard rules, for the shard or object named in the path.
    ShardRules,
    /// Any caller the router identifies: a token, or none where the
    /// manifest's `auth.anonymous` lets anonymous callers in.
    Caller,
    /// The manifest's `jobs.enqueue`.
    JobsEnqueue,
    /// The `start` of the named workflow.
    WorkflowStart,
    /// The manifest's `cache.read`.
    CacheRead,
    /// The manifest's `cache.write`.
    CacheWrite,
    /// The manifest's `channels` rules, for the channel named in the path.
    ChannelRules,
    /// Admins only.
    Admin,
    /// A session token (bearer or cookie).
    Session,
    /// A session, or a refresh token in the body (logout).
    SessionOrRefreshToken,
}

impl Access {
    /// The access an operation of a route file names in `x-pylon-access`.
    pub fn from_name(name: &str) -> Option<Access> {
        Some(match name {
            "public" => Access::Public,
            "shardRules" => Access::ShardRules,
            "caller" => Access::Caller,
            "jobsEnqueue" => Access::JobsEnqueue,
            "workflowStart" => Access::WorkflowStart,
            "cacheRead" => Access::CacheRead,
            "cacheWrite" => Access::CacheWrite,
            "channelRules" => Access::ChannelRules,
            "admin" => Access::Admin,
            "session" => Access::Session,
            "sessionOrRefreshToken" => Access::SessionOrRefreshToken,
            _ => return None,
        })
    }
}

/// Sets `op`'s `security` from its `x-pylon-access`, and ends its
/// description with who may call it. An unknown name (a unit test keeps
/// the route files free of them) is taken as admins only.
pub fn apply(op: &mut Value, manifest: &Manifest) {
    let name = op["x-pylon-access"].as_str().unwrap_or_default();
    let access = Access::from_name(name).unwrap_or(Access::Admin);
    let who = format!("Who: {}", who(access, manifest));
    let description = match op["description"].as_str() {
        Some(d) => format!("{d}\n\n{who}"),
        None => who,
    };
    op["description"] = Value::String(description);
    op["security"] = security(access, manifest);
}

/// Whether a shard rule lets callers without a token in (as
/// `AuthConfig::admit` decides it).
fn open(rule: &ShardRule) -> bool {
    rule.allow_anonymous && rule.roles.is_empty() && !rule.pattern.has_bindings()
}

/// Whether callers without any token get past `access`.
pub fn anonymous_allowed(access: Access, manifest: &Manifest) -> bool {
    let auth = manifest.auth();
    let background = manifest.background();
    match access {
        Access::Public => true,
        Access::ShardRules => auth.rules().iter().any(open),
        Access::Caller => auth.anonymous,
        Access::JobsEnqueue => auth.anonymous && background.jobs.enqueue == Who::Anyone,
        Access::WorkflowStart => {
            auth.anonymous && background.workflows.iter().any(|w| w.start == Who::Anyone)
        }
        Access::CacheRead => auth.anonymous && background.cache.read == Who::Anyone,
        Access::CacheWrite => auth.anonymous && background.cache.write == Who::Anyone,
        Access::ChannelRules => {
            let rules = &background.channels.rules;
            auth.anonymous
                && rules
                    .iter()
                    .any(|r| r.publish == Who::Anyone || r.subscribe == Who::Anyone)
        }
        Access::Admin | Access::Session => false,
        Access::SessionOrRefreshToken => true,
    }
}

/// The operation's `security`: none for [`Access::Public`]; otherwise
/// either scheme (`components.json`'s `securitySchemes`), or nothing at
/// all where anonymous callers are let in.
pub fn security(access: Access, manifest: &Manifest) -> Value {
    if access == Access::Public {
        return Value::Array(Vec::new());
    }
    let scheme = |name| object([(name, Value::Array(Vec::new()))]);
    let mut alternatives = vec![scheme("bearer"), scheme("sessionCookie")];
    if anonymous_allowed(access, manifest) {
        alternatives.push(Value::Object(Map::new()));
    }
    Value::Array(alternatives)
}

fn who_name(who: Who) -> &'static str {
    match who {
        Who::Admin => "admins",
        Who::SignedIn => "signed-in callers (a token with a user id) and admins",
        Who::Anyone => "anyone",
    }
}

/// Who may call, in words, for the operation's description.
pub fn who(access: Access, manifest: &Manifest) -> String {
    let anonymous = if manifest.auth().anonymous {
        "callers without a token too (the manifest's `auth.anonymous`)"
    } else {
        "a token is required (the manifest's `auth.anonymous` is false)"
    };
    match access {
        Access::Public => "anyone; no credentials are read.".into(),
        Access::ShardRules => format!(
            "the manifest's shard rules for this name: {}.",
            shard_rules(manifest)
        ),
        Access::Caller => format!("any caller; {anonymous}."),
        Access::JobsEnqueue => format!(
            "{} (the manifest's `jobs.enqueue`).",
            who_name(manifest.background().jobs.enqueue)
        ),
        Access::WorkflowStart => {
            let each: Vec<String> = manifest
                .background()
                .workflows
                .iter()
                .map(|w| format!("`{}`: {}", w.name, who_name(w.start)))
                .collect();
            if each.is_empty() {
                "the manifest declares no workflows.".into()
            } else {
                format!("each workflow's `start`: {}.", each.join("; "))
            }
        }
        Access::CacheRead => format!(
            "{} (the manifest's `cache.read`).",
            who_name(manifest.background().cache.read)
        ),
        Access::CacheWrite => format!(
            "{} (the manifest's `cache.write`; a command that writes needs it).",
            who_name(manifest.background().cache.write)
        ),
        Access::ChannelRules => channel_rules(manifest),
        Access::Admin => "admins only (a token whose admin claim is true).".into(),
        Access::Session => "a signed-in session (bearer session token or cookie).".into(),
        Access::SessionOrRefreshToken => {
            "a session (bearer or cookies, with CSRF), or its refresh token in the body.".into()
        }
    }
}

/// The channel rules in order, in words.
fn channel_rules(manifest: &Manifest) -> String {
    let rules = &manifest.background().channels.rules;
    if rules.is_empty() {
        return "the manifest declares no channels.".into();
    }
    let words: Vec<String> = rules
        .iter()
        .map(|r| {
            format!(
                "`{}`: publish {}, subscribe {}",
                r.pattern.as_str(),
                who_name(r.publish),
                who_name(r.subscribe)
            )
        })
        .collect();
    format!(
        "the manifest's `channels` rules (the first that fits a name governs it; a placeholder admits only the caller it names): {}.",
        words.join("; ")
    )
}

/// The shard rules in order, in words: the first whose pattern fits a
/// name governs it.
pub fn shard_rules(manifest: &Manifest) -> String {
    let rules = manifest.auth().rules();
    let words: Vec<String> = rules
        .iter()
        .map(|r| {
            let mut s = format!("`{}`", r.pattern.as_str());
            if !r.roles.is_empty() {
                s.push_str(&format!(" needs one of the roles {}", r.roles.join(", ")));
            } else if r.pattern.has_bindings() {
                s.push_str(" is for the caller its placeholders name");
            } else if open(r) {
                s.push_str(" is open to anyone, without a token too");
            } else {
                s.push_str(" needs a token");
            }
            s
        })
        .collect();
    format!(
        "{} (the first that fits a name governs it; admins may use every shard some rule fits)",
        words.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(auth: &str, rest: &str) -> Manifest {
        let text = format!(
            r#"{{"entities":[{{"name":"Card","fields":[{{"name":"title","type":"string"}}]}}],
                "auth":{auth}{rest}}}"#
        );
        Manifest::from_json_str(&text).unwrap()
    }

    #[test]
    fn public_reads_no_credentials() {
        let m = manifest(r#"{"anonymous":false}"#, "");
        assert_eq!(security(Access::Public, &m), json!([]));
    }

    #[test]
    fn credentials_required_or_optional() {
        let closed = manifest(r#"{"anonymous":false}"#, "");
        let both = json!([{ "bearer": [] }, { "sessionCookie": [] }]);
        for a in [
            Access::ShardRules,
            Access::Caller,
            Access::JobsEnqueue,
            Access::Admin,
        ] {
            assert_eq!(security(a, &closed), both, "{a:?}");
        }
        let open = manifest(
            r#"{"anonymous":true,"shards":[{"pattern":"user:{userId}"},{"pattern":"*","allowAnonymous":true}]}"#,
            r#","jobs":{"enqueue":"anyone"}"#,
        );
        let or_none = json!([{ "bearer": [] }, { "sessionCookie": [] }, {}]);
        for a in [Access::ShardRules, Access::Caller, Access::JobsEnqueue] {
            assert_eq!(security(a, &open), or_none, "{a:?}");
        }
        assert_eq!(security(Access::Admin, &open), both);
        assert_eq!(security(Access::Session, &open), both);
    }

    #[test]
    fn shard_rules_with_placeholders_or_roles_need_a_token() {
        let m = manifest(
            r#"{"anonymous":true,"shards":[{"pattern":"team:{tenantId}","allowAnonymous":true},
                {"pattern":"ops:*","roles":["ops"],"allowAnonymous":true}]}"#,
            "",
        );
        assert!(!anonymous_allowed(Access::ShardRules, &m));
        let words = shard_rules(&m);
        assert!(
            words.contains("`team:{tenantId}` is for the caller"),
            "{words}"
        );
        assert!(
            words.contains("`ops:*` needs one of the roles ops"),
            "{words}"
        );
    }

    #[test]
    fn anonymous_workflow_start_needs_anonymous_callers_and_an_open_workflow() {
        let wf =
            r#","workflows":[{"name":"w","start":"anyone","steps":[{"name":"s","sleepMs":1}]}]"#;
        assert!(anonymous_allowed(
            Access::WorkflowStart,
            &manifest(r#"{"anonymous":true}"#, wf)
        ));
        assert!(!anonymous_allowed(
            Access::WorkflowStart,
            &manifest(r#"{"anonymous":false}"#, wf)
        ));
        let m = manifest(r#"{"anonymous":true}"#, wf);
        assert_eq!(
            who(Access::WorkflowStart, &m),
            "each workflow's `start`: `w`: anyone."
        );
    }
}
