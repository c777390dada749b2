//! The runtime's optional parts, as cargo features an app can leave out of
//! its Worker (docs/apps.md, "Features"): a part left out is not exported,
//! not routed and not in the bundle. Live-query shards, the cold path,
//! tokens of identity providers, server functions, rooms and the app's
//! own object kinds are always built.
//!
//! Leaving a part out is never silent: its routes answer 501 `NOT_BUILT`,
//! a function that reaches it gets `UNAVAILABLE`, and a manifest that
//! configures it does not load (`manifest::Background::load`; so the
//! app's own `cargo test` fails before a deploy).
//!
//! ```
//! use pylon_workers::features::{self, Feature};
//! assert_eq!(features::for_path("/v1/crons"), Some(Feature::Jobs));
//! assert_eq!(features::for_path("/v1/shards/a/query"), None);
//! assert!(Feature::Jobs.built()); // this crate's default features have every part
//! ```

use crate::api_error::ApiError;

/// One part an app can leave out, named as its cargo feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Jobs, cron triggers, scheduled actions and workflows (the
    /// `JobLedger` and `Workflow` objects, the queue consumer).
    Jobs,
    /// The key-value cache (the `Cache` object).
    Cache,
    /// Pub/sub channels (the `Channel` and `ChannelDirectory` objects).
    Channels,
    /// Files on R2.
    Files,
    /// `GET /v1/openapi.json`.
    OpenApi,
    /// Sign-in (email codes, OAuth/OIDC providers) and its sessions (the
    /// `Auth` object). Without it, callers bring tokens of an identity
    /// provider (docs/auth.md) and a session token is refused.
    SignIn,
}

impl Feature {
    pub const ALL: [Feature; 6] = [
        Feature::Jobs,
        Feature::Cache,
        Feature::Channels,
        Feature::Files,
        Feature::OpenApi,
        Feature::SignIn,
    ];

    /// The cargo feature's name.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Jobs => "jobs",
            Feature::Cache => "cache",
            Feature::Channels => "channels",
            Feature::Files => "files",
            Feature::OpenApi => "openapi",
            Feature::SignIn => "signin",
        }
    }

    /// Whether this build has it.
    pub fn built(self) -> bool {
        match self {
            Feature::Jobs => cfg!(feature = "jobs"),
            Feature::Cache => cfg!(feature = "cache"),
            Feature::Channels => cfg!(feature = "channels"),
            Feature::Files => cfg!(feature = "files"),
            Feature::OpenApi => cfg!(feature = "openapi"),
            Feature::SignIn => cfg!(feature = "signin"),
        }
    }

    /// The path prefixes of its routes.
    fn paths(self) -> &'static [&'static str] {
        match self {
            Feature::Jobs => &["/v1/jobs", "/v1/workflows", "/v1/crons"],
            Feature::Cache => &["/v1/cache"],
            Feature::Channels => &["/v1/channels"],
            Feature::Files => &["/v1/files"],
            Feature::OpenApi => &["/v1/openapi.json"],
            Feature::SignIn => &["/v1/auth"],
        }
    }

    /// What a route of a part left out answers: 501 `NOT_BUILT`.
    pub fn not_built(self) -> ApiError {
        ApiError::new(
            501,
            "NOT_BUILT",
            format!(
                "this Worker was built without the `{}` feature of pylon-workers",
                self.name()
            ),
        )
    }
}

/// The part that serves `path` (a request path or an OpenAPI path
/// template), if it is an optional one.
pub fn for_path(path: &str) -> Option<Feature> {
    Feature::ALL.into_iter().find(|f| {
        f.paths().iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_optional_route_belongs_to_its_part() {
        let cases = [
            ("/v1/jobs", Some(Feature::Jobs)),
            ("/v1/jobs/j1", Some(Feature::Jobs)),
            ("/v1/workflows/{id}", Some(Feature::Jobs)),
            ("/v1/crons", Some(Feature::Jobs)),
            ("/v1/cache/{key}", Some(Feature::Cache)),
            ("/v1/channels", Some(Feature::Channels)),
            ("/v1/files/{shard}/{id}", Some(Feature::Files)),
            ("/v1/openapi.json", Some(Feature::OpenApi)),
            ("/v1/jobsx", None),
            ("/v1/shards/s/query", None),
            ("/v1/rooms", None),
            ("/v1/auth/email/start", Some(Feature::SignIn)),
            ("/v1/authx", None),
            ("/healthz", None),
        ];
        for (path, want) in cases {
            assert_eq!(for_path(path), want, "{path}");
        }
    }

    #[test]
    fn not_built_names_the_feature() {
        let e = Feature::Files.not_built();
        assert_eq!((e.status, e.code), (501, "NOT_BUILT"));
        assert!(e.message.contains("`files`"), "{}", e.message);
    }
}
