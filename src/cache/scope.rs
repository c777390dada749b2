//! Whose keys a caller may touch (docs/cache.md, "Tenants"). With the
//! manifest's `cache.scope` at `"shard"`, every key is `{shard}/{name}`
//! and belongs to that shard's tenant: the caller must be let into the
//! shard by the manifest's shard rules (`auth.shards`), exactly as for a
//! socket or a cold query, on top of `cache.read`/`cache.write`. With
//! `"app"` (the default) the keys are one namespace for the whole app.

use serde::{Deserialize, Serialize};

use super::CacheError;
use crate::api_error::ApiError;
use crate::auth::AuthConfig;
use crate::policy::AuthContext;

/// The manifest's `cache.scope`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CacheScope {
    /// One namespace for the app: `read` and `write` alone decide.
    #[default]
    App,
    /// Each key is `{shard}/{name}`, governed by the shard rules.
    Shard,
}

/// The shard a scoped key belongs to: the text before its first `/`.
pub fn key_shard(key: &str) -> Option<&str> {
    key.split_once('/')
        .map(|(shard, _)| shard)
        .filter(|s| !s.is_empty())
}

/// Whether `caller` may touch every one of `keys` under `scope`: 400
/// `BAD_KEY` for a key with no shard; for a shard the rules keep the
/// caller out of, 401 `UNAUTHORIZED` without a user (a token might let
/// them in), else 403 `FORBIDDEN`. Admins are let into every shard.
pub fn check<'k>(
    scope: CacheScope,
    auth: &AuthConfig,
    caller: &AuthContext,
    keys: impl IntoIterator<Item = &'k str>,
) -> Result<(), ApiError> {
    if scope == CacheScope::App {
        return Ok(());
    }
    for key in keys {
        let Some(shard) = key_shard(key) else {
            return Err(CacheError::BadKey(format!(
                "{key:?} names no shard: this app's cache keys are {{shard}}/{{name}}"
            ))
            .into());
        };
        if let Err(e) = auth.admit_caller(shard, caller) {
            // As for a refused shard: a token might let them in.
            let (status, code) = match caller.user_id.is_none() && !caller.is_admin {
                true => (401, "UNAUTHORIZED"),
                false => (403, "FORBIDDEN"),
            };
            return Err(ApiError::new(
                status,
                code,
                format!("the cache key {key:?} belongs to shard {shard:?}: {e}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Pattern, ShardRule};

    fn tenants() -> AuthConfig {
        AuthConfig {
            shards: vec![
                ShardRule::new(Pattern::parse("team:{tenantId}").unwrap()),
                ShardRule::new(Pattern::parse("lobby").unwrap()).allow_anonymous(true),
            ],
            ..AuthConfig::default()
        }
    }

    fn code(r: Result<(), ApiError>) -> String {
        r.unwrap_err().code.to_string()
    }

    #[test]
    fn app_scope_lets_any_key_through() {
        let anyone = AuthContext::anonymous();
        let r = check(CacheScope::App, &tenants(), &anyone, ["team:acme/x", "x"]);
        assert!(r.is_ok());
    }

    #[test]
    fn shard_scope_keeps_each_tenant_to_its_own_keys() {
        let acme = AuthContext::user("u1").with_tenant("acme");
        let auth = tenants();
        assert!(check(CacheScope::Shard, &auth, &acme, ["team:acme/hits"]).is_ok());
        assert!(check(
            CacheScope::Shard,
            &auth,
            &acme,
            ["team:acme/a/b", "lobby/x"]
        )
        .is_ok());
        let other = check(
            CacheScope::Shard,
            &auth,
            &acme,
            ["team:acme/a", "team:other/a"],
        );
        assert_eq!(code(other), "FORBIDDEN");
        let anonymous = AuthContext::anonymous();
        assert!(check(CacheScope::Shard, &auth, &anonymous, ["lobby/x"]).is_ok());
        let r = check(CacheScope::Shard, &auth, &anonymous, ["team:acme/x"]);
        assert_eq!(code(r), "UNAUTHORIZED");
        // A shard no rule names is nobody's but the admins'.
        let r = check(CacheScope::Shard, &auth, &acme, ["elsewhere/x"]);
        assert_eq!(code(r), "FORBIDDEN");
        let admin = AuthContext {
            is_admin: true,
            ..AuthContext::user("root")
        };
        assert!(check(CacheScope::Shard, &auth, &admin, ["team:other/a"]).is_ok());
    }

    #[test]
    fn shard_scope_wants_a_shard_in_every_key() {
        let acme = AuthContext::user("u1").with_tenant("acme");
        for key in ["hits", "/hits", ""] {
            let r = check(CacheScope::Shard, &tenants(), &acme, [key]);
            assert_eq!(code(r), "BAD_KEY", "{key:?}");
        }
        assert_eq!(key_shard("team:acme/a/b"), Some("team:acme"));
    }
}
