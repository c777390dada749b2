//! The manifest's background sections: `jobs` (the queues and who may
//! enqueue over HTTP), `crons` (functions the Worker's scheduled handler
//! runs), `workflows` (docs/jobs.md, docs/workflows.md), and `cache` (who
//! may read and write the cache, docs/cache.md), and `channels` (pub/sub,
//! docs/pubsub.md).
//!
//! ```json
//! "jobs": { "queues": ["default", "mail"], "enqueue": "signedIn" },
//! "cache": { "read": "signedIn", "write": "admin" },
//! "crons": [{ "name": "nightly", "cron": "0 3 * * *", "run": "compact", "args": {}, "shard": "board" }],
//! "workflows": [{ "name": "onboard", "steps": [{ "name": "a", "run": "createAccount" }] }]
//! ```

use serde::{Deserialize, Serialize};

use crate::functions::valid_name;
use crate::value::Value;
use crate::workflows::WorkflowDef;

/// Who may do something over HTTP. Admins always may.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Who {
    #[default]
    Admin,
    /// Any caller with a verified user id.
    SignedIn,
    Anyone,
}

impl Who {
    pub fn allows(self, caller: &crate::policy::AuthContext) -> bool {
        caller.is_admin
            || match self {
                Who::Admin => false,
                Who::SignedIn => caller.user_id.is_some(),
                Who::Anyone => true,
            }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// The queues jobs may name; each is a queue binding of the Worker
    /// (`JOBS` for `default`, `JOBS_<NAME>` in upper case for the others).
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// Who may `POST /v1/jobs`.
    #[serde(default)]
    pub enqueue: Who,
}

fn default_queues() -> Vec<String> {
    vec!["default".into()]
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            queues: default_queues(),
            enqueue: Who::Admin,
        }
    }
}

/// Who may use `/v1/cache` (docs/cache.md): `read` for `GET` of a key and
/// the commands that only read (`GET`, `EXISTS`, `TTL`, `PTTL`, `PING`),
/// `write` for the rest. Both are admins' alone unless the manifest says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    #[serde(default)]
    pub read: Who,
    #[serde(default)]
    pub write: Who,
    /// `"app"`: one namespace; `"shard"`: keys are `{shard}/{name}`,
    /// governed by the shard rules (docs/cache.md, "Tenants").
    #[serde(default)]
    pub scope: crate::cache::CacheScope,
}

/// A function the scheduled handler runs on a cron schedule. `cron` must
/// also be one of wrangler.toml's `[triggers] crons` (a test of the app
/// checks that they agree).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronEntry {
    pub name: String,
    pub cron: String,
    /// The server function: an action, or a mutation run in `shard`.
    pub run: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// The sections, loaded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Background {
    pub jobs: JobsConfig,
    pub crons: Vec<CronEntry>,
    pub workflows: Vec<WorkflowDef>,
    pub cache: CacheConfig,
    /// Files on R2 (docs/files.md); `None` without a `files` section.
    pub files: Option<crate::files::FilesConfig>,
    /// `channels` (docs/pubsub.md).
    pub channels: crate::channels::ChannelRules,
}

/// The section `key` of `top` parsed with `parse` (`None` when absent, or
/// when it does not parse: the problem is added). A section of a part
/// this build leaves out (src/features.rs) is a problem, and its parser
/// is not even compiled into the Worker.
fn section<T, E: SectionProblems>(
    top: &serde_json::Value,
    key: &str,
    feature: crate::features::Feature,
    built: impl Fn(crate::features::Feature) -> bool,
    problems: &mut Vec<(String, String)>,
    parse: impl FnOnce(serde_json::Value) -> Result<T, E>,
) -> Option<T> {
    let value = top.get(key).filter(|v| !v.is_null())?;
    if !built(feature) {
        problems.push((
            key.into(),
            format!(
                "needs the `{}` feature of pylon-workers, which this build leaves out",
                feature.name()
            ),
        ));
        return None;
    }
    parse(value.clone())
        .map_err(|e| problems.extend(e.problems(key)))
        .ok()
}

/// A section parser's error as `(path, reason)` problems.
trait SectionProblems {
    fn problems(self, key: &str) -> Vec<(String, String)>;
}

impl SectionProblems for serde_json::Error {
    fn problems(self, key: &str) -> Vec<(String, String)> {
        vec![(key.into(), self.to_string())]
    }
}

impl SectionProblems for Vec<(String, String)> {
    fn problems(self, _key: &str) -> Vec<(String, String)> {
        self
    }
}

impl Background {
    /// Loads the sections from the manifest's top-level object; each
    /// problem is `(path, reason)`.
    pub fn load(top: &serde_json::Value) -> Result<Background, Vec<(String, String)>> {
        Self::load_with(top, crate::features::Feature::built)
    }

    /// `load` in a build that has the parts `built` says.
    fn load_with(
        top: &serde_json::Value,
        built: impl Fn(crate::features::Feature) -> bool + Copy,
    ) -> Result<Background, Vec<(String, String)>> {
        use crate::features::Feature;
        let mut problems = Vec::new();
        let jobs: JobsConfig = section(
            top,
            "jobs",
            Feature::Jobs,
            built,
            &mut problems,
            serde_json::from_value,
        )
        .unwrap_or_default();
        let crons: Vec<CronEntry> = section(
            top,
            "crons",
            Feature::Jobs,
            built,
            &mut problems,
            serde_json::from_value,
        )
        .unwrap_or_default();
        let workflows: Vec<WorkflowDef> = section(
            top,
            "workflows",
            Feature::Jobs,
            built,
            &mut problems,
            serde_json::from_value,
        )
        .unwrap_or_default();
        let cache: CacheConfig = section(
            top,
            "cache",
            Feature::Cache,
            built,
            &mut problems,
            serde_json::from_value,
        )
        .unwrap_or_default();
        let files = section(
            top,
            "files",
            Feature::Files,
            built,
            &mut problems,
            serde_json::from_value,
        );
        let channels = section(
            top,
            "channels",
            Feature::Channels,
            built,
            &mut problems,
            |c| crate::channels::ChannelRules::load(&c),
        )
        .unwrap_or_default();
        for (i, q) in jobs.queues.iter().enumerate() {
            if !valid_name(q) {
                problems.push((
                    format!("jobs.queues[{i}]"),
                    format!("{q:?} is not a queue name"),
                ));
            }
        }
        if jobs.queues.is_empty() {
            problems.push(("jobs.queues".into(), "at least one queue".into()));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, c) in crons.iter().enumerate() {
            let at = format!("crons[{i}]");
            if !valid_name(&c.name) || !names.insert(c.name.as_str()) {
                problems.push((format!("{at}.name"), format!("{:?}: a unique name", c.name)));
            }
            if !valid_name(&c.run) {
                problems.push((format!("{at}.run"), format!("{:?}: a function name", c.run)));
            }
            if c.cron.split_whitespace().count() != 5 {
                problems.push((format!("{at}.cron"), format!("{:?}: five fields", c.cron)));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, w) in workflows.iter().enumerate() {
            if !names.insert(w.name.as_str()) {
                problems.push((
                    format!("workflows[{i}].name"),
                    format!("{:?} twice", w.name),
                ));
            }
            for p in w.problems() {
                problems.push((format!("workflows[{i}]"), p));
            }
        }
        if problems.is_empty() {
            Ok(Background {
                jobs,
                crons,
                workflows,
                cache,
                files,
                channels,
            })
        } else {
            Err(problems)
        }
    }

    /// The binding of queue `queue`: `JOBS` for `default`, else
    /// `JOBS_<QUEUE>` in upper case.
    pub fn queue_binding(queue: &str) -> String {
        if queue == "default" {
            "JOBS".into()
        } else {
            format!("JOBS_{}", queue.to_ascii_uppercase())
        }
    }

    pub fn workflow(&self, name: &str) -> Option<&WorkflowDef> {
        self.workflows.iter().find(|w| w.name == name)
    }

    pub fn cron(&self, name: &str) -> Option<&CronEntry> {
        self.crons.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_sections_take_their_defaults() {
        let b = Background::load(&json!({"entities": []})).unwrap();
        assert_eq!(b.jobs.queues, vec!["default"]);
        assert!(b.crons.is_empty() && b.workflows.is_empty());
        assert_eq!((b.cache.read, b.cache.write), (Who::Admin, Who::Admin));
    }

    #[test]
    fn a_section_of_a_part_the_build_leaves_out_is_a_problem() {
        use crate::features::Feature;
        let top = json!({
            "crons": [{"name": "tidy", "cron": "0 * * * *", "run": "tidy"}],
            "cache": {"read": "anyone"},
            "channels": null,
            "files": {"entity": "nope"},
        });
        // Only files built: the crons and the cache are refused by name,
        // a null section is absent, and files is still checked.
        let problems = Background::load_with(&top, |f| f == Feature::Files).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["crons", "cache", "files"], "{problems:?}");
        assert!(problems[0].1.contains("the `jobs` feature"), "{problems:?}");
        assert!(problems[1].1.contains("the `cache` feature"), "{problems:?}");
        assert!(!problems[2].1.contains("feature"), "{problems:?}");
        // Nothing left out: the same crons and cache load.
        let top = json!({
            "crons": [{"name": "tidy", "cron": "0 * * * *", "run": "tidy"}],
            "cache": {"read": "anyone"},
        });
        let b = Background::load_with(&top, |_| true).unwrap();
        assert_eq!((b.crons.len(), b.cache.read), (1, Who::Anyone));
    }

    #[test]
    fn the_cache_section() {
        let b = Background::load(&json!({"cache": {"read": "anyone"}})).unwrap();
        assert_eq!((b.cache.read, b.cache.write), (Who::Anyone, Who::Admin));
        let b = Background::load(&json!({"cache": {"read": "signedIn", "write": "signedIn"}}));
        assert_eq!(b.unwrap().cache.write, Who::SignedIn);
        for bad in [
            json!({"cache": {"read": "everyone"}}),
            json!({"cache": {"reads": "anyone"}}),
        ] {
            let problems = Background::load(&bad).unwrap_err();
            assert_eq!(problems[0].0, "cache", "{problems:?}");
        }
    }

    #[test]
    fn each_problem_names_its_place() {
        let top = json!({
            "jobs": {"queues": ["default", "no way"]},
            "crons": [{"name": "a", "cron": "* *", "run": "f"}],
            "workflows": [{"name": "w", "steps": [{"name": "s", "run": "f", "sleepMs": 5}]}],
        });
        let problems = Background::load(&top).unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec!["jobs.queues[1]", "crons[0].cron", "workflows[0]"],
            "{problems:?}"
        );
        let typo = Background::load(&json!({"jobs": {"queue": ["x"]}})).unwrap_err();
        assert!(typo[0].1.contains("unknown field"), "{typo:?}");
    }

    #[test]
    fn who_may() {
        use crate::policy::AuthContext;
        let admin = AuthContext {
            is_admin: true,
            ..Default::default()
        };
        let user = AuthContext::user("u1");
        let anon = AuthContext::anonymous();
        assert!(Who::Admin.allows(&admin) && !Who::Admin.allows(&user));
        assert!(Who::SignedIn.allows(&user) && !Who::SignedIn.allows(&anon));
        assert!(Who::Anyone.allows(&anon));
    }
}
