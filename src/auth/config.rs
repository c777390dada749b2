//! The manifest's `auth` section: how tokens are checked, how their claims
//! become an [`AuthContext`], and who may use which shard.
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
//! assert!(config.admit("team:acme", Some(&acme)).is_ok());
//! assert_eq!(config.admit("team:other", Some(&acme)).unwrap_err().reason(), "SHARD_DENIED");
//! assert_eq!(config.admit("team:acme", None).unwrap_err().reason(), "MISSING_TOKEN");
//! assert!(config.admit("lobby", None).is_ok());
//! ```

use serde_json::{Map, Value as Json};

use super::error::AuthError;
use super::jwks::JwksPolicy;
use super::jwt::Validation;
use crate::policy::AuthContext;
use crate::route::is_shard_name_char;

/// HS256 secrets shorter than this (256 bits) are refused.
pub const MIN_SECRET_BYTES: usize = 32;

/// The validated `auth` section (see docs/auth.md). The default is what a
/// manifest without one gets: tokens required on every shard.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthConfig {
    /// Whether callers without a token are let in, on shard rules that do
    /// not say otherwise.
    pub anonymous: bool,
    pub validation: Validation,
    /// RS256/ES256 keys from a JWKS URL (`auth.jwks`), if configured.
    pub jwks: Option<JwksPolicy>,
    pub claims: ClaimNames,
    /// In order; the first whose pattern fits a shard name governs it.
    /// Empty means one rule `*` with `allowAnonymous` = `anonymous`.
    pub shards: Vec<ShardRule>,
}

/// Which token claim fills each [`AuthContext`] field. `None` leaves the
/// field empty whatever the token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimNames {
    /// Required in every token.
    pub user_id: String,
    pub tenant_id: Option<String>,
    /// A list of strings, or one string of space-separated roles.
    pub roles: Option<String>,
    /// Only JSON `true` makes an admin.
    pub is_admin: Option<String>,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            user_id: "sub".into(),
            tenant_id: Some("tenant".into()),
            roles: Some("roles".into()),
            is_admin: Some("admin".into()),
        }
    }
}

/// A claim a shard pattern can bind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    UserId,
    TenantId,
}

impl Binding {
    pub fn name(self) -> &'static str {
        match self {
            Binding::UserId => "userId",
            Binding::TenantId => "tenantId",
        }
    }

    fn value(self, a: &AuthContext) -> Option<&str> {
        match self {
            Binding::UserId => a.user_id.as_deref(),
            Binding::TenantId => a.tenant_id.as_deref(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// `*`: any run of characters, including none.
    Star,
    /// `{userId}` / `{tenantId}`: the caller's value.
    Var(Binding),
}

/// A shard-name pattern: literal text, `*`, `{userId}`, `{tenantId}`.
///
/// A pattern *fits* a name when it matches with each placeholder standing
/// for any non-empty text; it *admits* a caller when it matches with each
/// placeholder replaced by the caller's own value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    parts: Vec<Part>,
}

/// One element of a compiled glob.
#[derive(Clone, Copy)]
enum G {
    Byte(u8),
    One,
    Run,
}

/// Classic wildcard matching, O(pattern × name) at worst.
fn glob(p: &[G], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut back: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(G::Run) => {
                back = Some((pi, si));
                pi += 1;
            }
            Some(G::One) => {
                pi += 1;
                si += 1;
            }
            Some(G::Byte(b)) if *b == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match back {
                Some((bp, bs)) => {
                    pi = bp + 1;
                    si = bs + 1;
                    back = Some((bp, bs + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|g| matches!(g, G::Run))
}

impl Pattern {
    /// Parses a pattern; the error says what is wrong.
    pub fn parse(s: &str) -> Result<Pattern, String> {
        if s.is_empty() {
            return Err("a pattern cannot be empty".into());
        }
        if s.len() > 256 {
            return Err("a pattern is at most 256 characters".into());
        }
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            match c {
                '*' => {
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    if parts.last() != Some(&Part::Star) {
                        parts.push(Part::Star);
                    }
                    rest = &rest[1..];
                }
                '{' => {
                    let Some(end) = rest.find('}') else {
                        return Err("`{` without a closing `}`".into());
                    };
                    let binding = match &rest[1..end] {
                        "userId" => Binding::UserId,
                        "tenantId" => Binding::TenantId,
                        other => {
                            return Err(format!(
                                "unknown placeholder {{{other}}} (use {{userId}} or {{tenantId}})"
                            ))
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Lit(std::mem::take(&mut lit)));
                    }
                    parts.push(Part::Var(binding));
                    rest = &rest[end + 1..];
                }
                c if is_shard_name_char(c) => {
                    lit.push(c);
                    rest = &rest[1..];
                }
                c => {
                    return Err(format!(
                        "{c:?} cannot appear in a shard name (A-Z a-z 0-9 . _ - : and * {{userId}} {{tenantId}})"
                    ))
                }
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Pattern {
            source: s.to_owned(),
            parts,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern binds a claim.
    pub fn has_bindings(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// Whether the pattern's shape fits `shard` (placeholders: any non-empty text).
    pub fn fits(&self, shard: &str) -> bool {
        let mut g = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => g.extend(l.bytes().map(G::Byte)),
                Part::Star => g.push(G::Run),
                Part::Var(_) => g.extend([G::One, G::Run]),
            }
        }
        glob(&g, shard.as_bytes())
    }

    /// Whether `shard` matches with the placeholders bound to the caller's
    /// values; a caller lacking a bound value never matches.
    pub fn admits(&self, shard: &str, caller: &AuthContext) -> bool {
        let mut g = Vec::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => g.extend(l.bytes().map(G::Byte)),
                Part::Star => g.push(G::Run),
                Part::Var(b) => match b.value(caller) {
                    Some(v) if !v.is_empty() => g.extend(v.bytes().map(G::Byte)),
                    _ => return false,
                },
            }
        }
        glob(&g, shard.as_bytes())
    }

    /// The names the pattern fits, as an SQLite GLOB: literal text (shard
    /// name characters only, never a GLOB metacharacter), `*`, and `?*`
    /// for a placeholder (any non-empty text).
    pub fn fits_glob(&self) -> String {
        let mut g = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => g.push_str(l),
                Part::Star => g.push('*'),
                Part::Var(_) => g.push_str("?*"),
            }
        }
        g
    }

    /// The names the pattern admits for `caller`, as an SQLite GLOB; `None`
    /// when it admits none: a placeholder without a value, or with a
    /// character no shard name holds (a claim may hold `*`, `?` or `[`;
    /// [`Pattern::admits`] compares them literally, so they never match).
    pub fn admits_glob(&self, caller: &AuthContext) -> Option<String> {
        let mut g = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => g.push_str(l),
                Part::Star => g.push('*'),
                Part::Var(b) => match b.value(caller) {
                    Some(v) if !v.is_empty() && v.chars().all(is_shard_name_char) => g.push_str(v),
                    _ => return None,
                },
            }
        }
        Some(g)
    }
}

/// Who may use the shards a pattern fits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardRule {
    pub pattern: Pattern,
    /// Callers without a token are let in (as anonymous). Ignored for
    /// patterns with placeholders and rules with `roles`.
    pub allow_anonymous: bool,
    /// When not empty, the caller needs at least one of these roles.
    pub roles: Vec<String>,
}

impl ShardRule {
    pub fn new(pattern: Pattern) -> ShardRule {
        ShardRule {
            pattern,
            allow_anonymous: false,
            roles: Vec::new(),
        }
    }

    pub fn allow_anonymous(mut self, yes: bool) -> ShardRule {
        self.allow_anonymous = yes;
        self
    }

    pub fn roles<S: Into<String>>(mut self, roles: impl IntoIterator<Item = S>) -> ShardRule {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }
}

fn claim_text(claims: &Map<String, Json>, name: &str) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(Json::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(_) => Err(AuthError::BadToken(format!(
            "claim `{name}` is not a non-empty string"
        ))),
    }
}

impl AuthConfig {
    /// The rules in force, in order: `shards`, or the implicit `*` rule.
    pub fn rules(&self) -> std::borrow::Cow<'_, [ShardRule]> {
        if self.shards.is_empty() {
            let star = Pattern::parse("*").expect("a valid pattern");
            let rule = ShardRule::new(star).allow_anonymous(self.anonymous);
            return std::borrow::Cow::Owned(vec![rule]);
        }
        std::borrow::Cow::Borrowed(&self.shards)
    }

    /// Whether `caller` (`None`: no token) may use `shard`. Admins may use
    /// every shard some rule fits.
    pub fn admit(&self, shard: &str, caller: Option<&AuthContext>) -> Result<(), AuthError> {
        let rules = self.rules();
        // The rule that governs `shard`: the first whose pattern fits it.
        let Some(rule) = rules.iter().find(|r| r.pattern.fits(shard)) else {
            return Err(AuthError::Forbidden(format!(
                "no shard rule lets anyone use {shard:?}"
            )));
        };
        let Some(caller) = caller else {
            let open =
                rule.allow_anonymous && rule.roles.is_empty() && !rule.pattern.has_bindings();
            return if open {
                Ok(())
            } else {
                Err(AuthError::MissingToken)
            };
        };
        if caller.is_admin {
            return Ok(());
        }
        if !rule.roles.is_empty() && !rule.roles.iter().any(|r| caller.has_role(r)) {
            return Err(AuthError::Forbidden(format!(
                "shard {shard:?} needs one of the roles {:?}",
                rule.roles
            )));
        }
        if !rule.pattern.admits(shard, caller) {
            return Err(AuthError::Forbidden(format!(
                "shard {shard:?} is not yours (rule {:?})",
                rule.pattern.as_str()
            )));
        }
        Ok(())
    }

    /// The caller a token's verified claims describe.
    pub fn context(&self, claims: &Map<String, Json>) -> Result<AuthContext, AuthError> {
        let c = &self.claims;
        let user_id = claim_text(claims, &c.user_id)?
            .ok_or_else(|| AuthError::BadToken(format!("claim `{}` is missing", c.user_id)))?;
        let tenant_id = match &c.tenant_id {
            Some(name) => claim_text(claims, name)?,
            None => None,
        };
        let roles = match c
            .roles
            .as_deref()
            .and_then(|n| claims.get(n).map(|v| (n, v)))
        {
            None | Some((_, Json::Null)) => Vec::new(),
            Some((_, Json::String(s))) => s.split_whitespace().map(str::to_owned).collect(),
            Some((n, Json::Array(list))) => list
                .iter()
                .map(|r| r.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    AuthError::BadToken(format!("claim `{n}` is not a list of strings"))
                })?,
            Some((n, _)) => {
                return Err(AuthError::BadToken(format!(
                    "claim `{n}` is not a list of strings"
                )))
            }
        };
        let is_admin = match c
            .is_admin
            .as_deref()
            .and_then(|n| claims.get(n).map(|v| (n, v)))
        {
            None | Some((_, Json::Null | Json::Bool(false))) => false,
            Some((_, Json::Bool(true))) => true,
            Some((n, _)) => return Err(AuthError::BadToken(format!("claim `{n}` is not a bool"))),
        };
        Ok(AuthContext {
            user_id: Some(user_id),
            is_admin,
            tenant_id,
            roles,
        })
    }

    /// The whole edge decision for one request to `shard`, for HS256
    /// tokens (the Worker uses [`crate::auth::verify_token`], which adds
    /// JWKS keys, then [`AuthConfig::decide`]): verifies the token (if any)
    /// with `secret` at `now` (Unix seconds), builds the caller, and checks
    /// the shard rules. A token that is present but invalid is refused even
    /// where anonymous callers are let in.
    pub fn authenticate(
        &self,
        token: Option<&str>,
        secret: Option<&[u8]>,
        shard: &str,
        now: i64,
    ) -> Result<AuthContext, AuthError> {
        let caller = token
            .map(|t| self.verified_hs256(t, secret, now))
            .transpose()?;
        self.decide(shard, caller)
    }

    /// The shard rules applied to a verified caller (`None`: no token).
    pub fn decide(
        &self,
        shard: &str,
        caller: Option<AuthContext>,
    ) -> Result<AuthContext, AuthError> {
        self.admit(shard, caller.as_ref())?;
        Ok(caller.unwrap_or_else(AuthContext::anonymous))
    }

    /// The caller of a request that is not for one shard (cross-shard reads
    /// on the cold path, where read policies filter every row): a verified
    /// token, or anonymous where the manifest lets anonymous callers in.
    pub fn identify(
        &self,
        token: Option<&str>,
        secret: Option<&[u8]>,
        now: i64,
    ) -> Result<AuthContext, AuthError> {
        let caller = token
            .map(|t| self.verified_hs256(t, secret, now))
            .transpose()?;
        self.identify_caller(caller)
    }

    /// [`AuthConfig::identify`] for a caller already verified.
    pub fn identify_caller(&self, caller: Option<AuthContext>) -> Result<AuthContext, AuthError> {
        match caller {
            Some(c) => Ok(c),
            None if self.anonymous => Ok(AuthContext::anonymous()),
            None => Err(AuthError::MissingToken),
        }
    }

    fn verified_hs256(
        &self,
        token: &str,
        secret: Option<&[u8]>,
        now: i64,
    ) -> Result<AuthContext, AuthError> {
        let claims =
            super::jwt::verify_hs256(token, checked_secret(secret)?, &self.validation, now)?;
        self.context(&claims)
    }
}

/// The HS256 secret, if it is long enough.
pub(crate) fn checked_secret(secret: Option<&[u8]>) -> Result<&[u8], AuthError> {
    match secret {
        None => Err(AuthError::NotConfigured("PYLON_JWT_SECRET is not set")),
        Some(s) if s.len() < MIN_SECRET_BYTES => Err(AuthError::NotConfigured(
            "PYLON_JWT_SECRET is shorter than 32 bytes",
        )),
        Some(s) => Ok(s),
    }
}
