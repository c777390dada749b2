//! Loading a manifest from JSON: shape checks, names, cross-references and
//! policy parsing, collecting every problem rather than stopping at the first.
//!
//! ```
//! use pylon_workers::manifest::{FieldType, Manifest};
//! let m = Manifest::from_json_str(r#"{"entities":[
//!     {"name":"User","fields":[{"name":"email","type":"string","unique":true}]},
//!     {"name":"Todo","fields":[{"name":"ownerId","type":"id(User)"}]}]}"#).unwrap();
//! assert_eq!(m.entity("Todo").unwrap().fields[0].ty, FieldType::Id("User".into()));
//! ```

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::error::Problem;
use super::model::{Entity, Field, FieldType, Index};
use super::names::{check_name, is_sqlite_reserved, NameCheck};
use crate::auth::jwks::{self, JwksPolicy};
use crate::auth::{Alg, AuthConfig, ClaimNames, Pattern, ShardRule, Validation};
use crate::policy::{Policies, Policy, Rule};

/// What a manifest declares, validated.
pub(super) struct Loaded {
    pub name: Option<String>,
    pub version: Option<String>,
    pub entities: Vec<Entity>,
    pub policies: Policies,
    pub auth: AuthConfig,
}

const ENTITY_KEYS: &[&str] = &["name", "fields", "indexes"];
const FIELD_KEYS: &[&str] = &["name", "type", "optional", "unique"];
const INDEX_KEYS: &[&str] = &["name", "fields", "unique"];
const AUTH_KEYS: &[&str] = &[
    "anonymous",
    "issuer",
    "audience",
    "clockSkewSeconds",
    "jwks",
    "claims",
    "shards",
];
const JWKS_KEYS: &[&str] = &[
    "url",
    "cacheSeconds",
    "minRefreshSeconds",
    "maxStaleSeconds",
    "algorithms",
];
const CLAIM_KEYS: &[&str] = &["userId", "tenantId", "roles", "isAdmin"];
const SHARD_RULE_KEYS: &[&str] = &["pattern", "allowAnonymous", "roles"];
/// Upper bound of `auth.clockSkewSeconds`.
const MAX_CLOCK_SKEW: u64 = 3600;

const POLICY_KEYS: &[&str] = &[
    "name",
    "entity",
    "allowRead",
    "allowInsert",
    "allowUpdate",
    "allowDelete",
    "allowWrite",
    "allow",
];

pub(super) fn load(root: &Json) -> Result<Loaded, Vec<Problem>> {
    let mut cx = Cx::default();
    let Some(top) = cx.object(root, "") else {
        return Err(cx.problems);
    };
    let name = cx.opt_str(top, "", "name").map(str::to_owned);
    let version = match top.get("version") {
        None | Some(Json::Null) => None,
        Some(Json::String(s)) => Some(s.clone()),
        Some(Json::Number(n)) => Some(n.to_string()),
        Some(v) => {
            cx.wrong(v, "version", "a string or a number");
            None
        }
    };
    let entities = match top.get("entities") {
        None => {
            cx.push(Problem::MissingKey {
                path: String::new(),
                key: "entities",
            });
            Vec::new()
        }
        Some(v) => cx
            .array(v, "entities")
            .iter()
            .enumerate()
            .filter_map(|(i, e)| cx.entity(e, i))
            .collect(),
    };
    cx.cross_check(&entities);
    let policies = cx.policies(top.get("policies"), &entities);
    let auth = match top.get("auth") {
        None | Some(Json::Null) => AuthConfig::default(),
        Some(v) => cx.auth(v),
    };
    if cx.problems.is_empty() {
        Ok(Loaded {
            name,
            version,
            entities,
            policies,
            auth,
        })
    } else {
        Err(cx.problems)
    }
}

/// The entities as declared, with the paths needed to report on them later.
#[derive(Default)]
struct Cx {
    problems: Vec<Problem>,
    /// Per loaded entity: its path, and per field / index their paths.
    paths: Vec<EntityPaths>,
}

struct EntityPaths {
    entity: String,
    name_path: String,
    /// Whether the entity loaded (then it is the next one in the list).
    loaded: bool,
    /// Every well-named field and index, loaded or not: (name, path of name).
    names: Vec<(&'static str, String, String)>,
    fields: Vec<String>,
    /// Per index: its path and the path of each of its fields.
    indexes: Vec<(String, Vec<String>)>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a bool",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Parses a manifest type name; `None` if unknown.
pub(super) fn parse_type(s: &str) -> Option<FieldType> {
    Some(match s {
        "string" => FieldType::String,
        "int" => FieldType::Int,
        "float" => FieldType::Float,
        "bool" => FieldType::Bool,
        "datetime" => FieldType::Datetime,
        "json" => FieldType::Json,
        _ => {
            let target = s.strip_prefix("id(")?.strip_suffix(')')?.trim();
            if check_name(target) != NameCheck::Ok {
                return None;
            }
            FieldType::Id(target.to_owned())
        }
    })
}

impl Cx {
    fn push(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn wrong(&mut self, v: &Json, path: &str, expected: &'static str) {
        self.push(Problem::WrongType {
            path: path.to_owned(),
            expected,
            given: json_type(v),
        });
    }

    fn object<'a>(&mut self, v: &'a Json, path: &str) -> Option<&'a Map<String, Json>> {
        match v {
            Json::Object(o) => Some(o),
            _ => {
                self.wrong(
                    v,
                    if path.is_empty() { "(top level)" } else { path },
                    "an object",
                );
                None
            }
        }
    }

    fn array<'a>(&mut self, v: &'a Json, path: &str) -> &'a [Json] {
        match v {
            Json::Array(a) => a,
            _ => {
                self.wrong(v, path, "an array");
                &[]
            }
        }
    }

    fn known_keys(&mut self, o: &Map<String, Json>, path: &str, allowed: &[&str]) {
        for k in o.keys().filter(|k| !allowed.contains(&k.as_str())) {
            self.push(Problem::UnknownKey {
                path: join(path, k),
                key: k.clone(),
            });
        }
    }

    fn opt_str<'a>(&mut self, o: &'a Map<String, Json>, path: &str, key: &str) -> Option<&'a str> {
        match o.get(key) {
            None | Some(Json::Null) => None,
            Some(Json::String(s)) => Some(s),
            Some(v) => {
                self.wrong(v, &join(path, key), "a string");
                None
            }
        }
    }

    fn req_str<'a>(
        &mut self,
        o: &'a Map<String, Json>,
        path: &str,
        key: &'static str,
    ) -> Option<&'a str> {
        if matches!(o.get(key), None | Some(Json::Null)) {
            self.push(Problem::MissingKey {
                path: path.to_owned(),
                key,
            });
            return None;
        }
        self.opt_str(o, path, key)
    }

    fn opt_bool(&mut self, o: &Map<String, Json>, path: &str, key: &str) -> bool {
        match o.get(key) {
            None | Some(Json::Null) => false,
            Some(Json::Bool(b)) => *b,
            Some(v) => {
                self.wrong(v, &join(path, key), "a bool");
                false
            }
        }
    }

    fn opt_array<'a>(&mut self, o: &'a Map<String, Json>, path: &str, key: &str) -> &'a [Json] {
        match o.get(key) {
            None | Some(Json::Null) => &[],
            Some(v) => self.array(v, &join(path, key)),
        }
    }

    /// A required, well-formed name at `path.name`.
    fn name<'a>(&mut self, o: &'a Map<String, Json>, path: &str) -> Option<&'a str> {
        let name = self.req_str(o, path, "name")?;
        let path = join(path, "name");
        match check_name(name) {
            NameCheck::Ok => Some(name),
            NameCheck::Reserved => {
                self.push(Problem::ReservedName {
                    path,
                    name: name.to_owned(),
                });
                None
            }
            NameCheck::Invalid => {
                self.push(Problem::InvalidName {
                    path,
                    name: name.to_owned(),
                });
                None
            }
        }
    }

    fn entity(&mut self, v: &Json, i: usize) -> Option<Entity> {
        let path = format!("entities[{i}]");
        let o = self.object(v, &path)?;
        self.known_keys(o, &path, ENTITY_KEYS);
        let mut name = self.name(o, &path).map(str::to_owned);
        if let Some(n) = name.as_deref().filter(|n| is_sqlite_reserved(n)) {
            self.push(Problem::ReservedName {
                path: join(&path, "name"),
                name: n.to_owned(),
            });
            name = None;
        }
        let mut paths = EntityPaths {
            entity: name.clone().unwrap_or_default(),
            name_path: join(&path, "name"),
            loaded: false,
            names: Vec::new(),
            fields: Vec::new(),
            indexes: Vec::new(),
        };
        let mut fields = Vec::new();
        for (j, f) in self.opt_array(o, &path, "fields").iter().enumerate() {
            let fpath = format!("{path}.fields[{j}]");
            if let Some(n) = f
                .get("name")
                .and_then(Json::as_str)
                .filter(|n| check_name(n) == NameCheck::Ok)
            {
                paths
                    .names
                    .push(("field", n.to_owned(), join(&fpath, "name")));
            }
            if let Some(field) = self.field(f, &fpath) {
                fields.push(field);
                paths.fields.push(fpath);
            }
        }
        let mut indexes = Vec::new();
        for (j, x) in self.opt_array(o, &path, "indexes").iter().enumerate() {
            let xpath = format!("{path}.indexes[{j}]");
            if let Some(n) = x
                .get("name")
                .and_then(Json::as_str)
                .filter(|n| check_name(n) == NameCheck::Ok)
            {
                paths
                    .names
                    .push(("index", n.to_owned(), join(&xpath, "name")));
            }
            if let Some((index, field_paths)) = self.index(x, &xpath) {
                indexes.push(index);
                paths.indexes.push((xpath, field_paths));
            }
        }
        paths.loaded = name.is_some();
        self.paths.push(paths);
        Some(Entity {
            name: name?,
            fields,
            indexes,
        })
    }

    /// A field; `None` if malformed, or the declared `id` (which is implicit).
    fn field(&mut self, v: &Json, path: &str) -> Option<Field> {
        let o = self.object(v, path)?;
        self.known_keys(o, path, FIELD_KEYS);
        let name = self.name(o, path);
        let ty_text = self.req_str(o, path, "type");
        let ty = ty_text.and_then(|t| {
            let ty = parse_type(t);
            if ty.is_none() {
                self.push(Problem::UnknownType {
                    path: join(path, "type"),
                    given: t.to_owned(),
                });
            }
            ty
        });
        let optional = self.opt_bool(o, path, "optional");
        let unique = self.opt_bool(o, path, "unique");
        let name = name?;
        if name.eq_ignore_ascii_case("id") {
            let reason = if name != "id" {
                Some("it differs from the implicit `id` only by case, and SQLite names ignore case")
            } else if ty.as_ref().is_some_and(|t| *t != FieldType::String) {
                Some("`id` is the implicit text primary key; only type \"string\" may be declared")
            } else if optional {
                Some("`id` is the primary key and cannot be optional")
            } else {
                None
            };
            if let Some(reason) = reason {
                self.push(Problem::InvalidIdField {
                    path: path.to_owned(),
                    reason,
                });
            }
            return None;
        }
        Some(Field {
            name: name.to_owned(),
            ty: ty?,
            optional,
            unique,
        })
    }

    /// An index and the path of each of its fields.
    fn index(&mut self, v: &Json, path: &str) -> Option<(Index, Vec<String>)> {
        let o = self.object(v, path)?;
        self.known_keys(o, path, INDEX_KEYS);
        let name = self.name(o, path);
        let unique = self.opt_bool(o, path, "unique");
        let mut fields = Vec::new();
        let mut field_paths = Vec::new();
        match o.get("fields") {
            None | Some(Json::Null) => self.push(Problem::MissingKey {
                path: path.to_owned(),
                key: "fields",
            }),
            Some(v) => {
                let list = self.array(v, &join(path, "fields"));
                if list.is_empty() && v.is_array() {
                    self.push(Problem::EmptyIndex {
                        path: join(path, "fields"),
                    });
                }
                for (k, f) in list.iter().enumerate() {
                    let fpath = format!("{path}.fields[{k}]");
                    match f {
                        Json::String(s) => {
                            fields.push(s.clone());
                            field_paths.push(fpath);
                        }
                        _ => self.wrong(f, &fpath, "a field name"),
                    }
                }
            }
        }
        Some((
            Index {
                name: name?.to_owned(),
                fields,
                unique,
            },
            field_paths,
        ))
    }

    /// Duplicates, `id(X)` targets and index fields, once all entities are read.
    fn cross_check(&mut self, entities: &[Entity]) {
        let paths = std::mem::take(&mut self.paths);
        let mut seen = HashMap::new();
        for p in paths.iter().filter(|p| !p.entity.is_empty()) {
            self.unique_name(&mut seen, "entity", &p.entity, &p.entity, &p.name_path);
        }
        for p in &paths {
            let mut seen = HashMap::new();
            for (kind, name, path) in &p.names {
                // Fields and indexes have separate namespaces; `id` is checked apart.
                if !name.eq_ignore_ascii_case("id") || *kind == "index" {
                    self.unique_name(&mut seen, kind, &format!("{kind}:{name}"), name, path);
                }
            }
        }
        for (e, p) in entities.iter().zip(paths.iter().filter(|p| p.loaded)) {
            for (f, fpath) in e.fields.iter().zip(&p.fields) {
                if let FieldType::Id(target) = &f.ty {
                    if !entities.iter().any(|x| x.name == *target) {
                        self.push(Problem::UnknownEntity {
                            path: join(fpath, "type"),
                            name: target.clone(),
                        });
                    }
                }
            }
            for (x, (_, fpaths)) in e.indexes.iter().zip(&p.indexes) {
                let mut seen_fields = HashMap::new();
                for (f, fpath) in x.fields.iter().zip(fpaths) {
                    if !e.has_column(f) {
                        self.push(Problem::UnknownField {
                            path: fpath.clone(),
                            entity: e.name.clone(),
                            field: f.clone(),
                        });
                    } else {
                        self.unique_name(&mut seen_fields, "index field", f, f, fpath);
                    }
                }
            }
        }
    }

    /// Reports `name` if `key` was seen before (ignoring case).
    fn unique_name(
        &mut self,
        seen: &mut HashMap<String, String>,
        kind: &'static str,
        key: &str,
        name: &str,
        path: &str,
    ) {
        match seen.get(&key.to_ascii_lowercase()) {
            Some(first) => self.push(Problem::DuplicateName {
                path: path.to_owned(),
                kind,
                name: name.to_owned(),
                first: first.clone(),
            }),
            None => {
                seen.insert(key.to_ascii_lowercase(), path.to_owned());
            }
        }
    }

    fn policies(&mut self, v: Option<&Json>, entities: &[Entity]) -> Policies {
        let list = match v {
            None | Some(Json::Null) => &[][..],
            Some(v) => self.array(v, "policies"),
        };
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for (i, p) in list.iter().enumerate() {
            let path = format!("policies[{i}]");
            let Some(o) = self.object(p, &path) else {
                continue;
            };
            self.known_keys(o, &path, POLICY_KEYS);
            let name = self.name(o, &path);
            if let Some(n) = name {
                self.unique_name(&mut seen, "policy", n, n, &join(&path, "name"));
            }
            let entity_name = self.req_str(o, &path, "entity");
            let entity = entity_name.and_then(|n| {
                let e = entities.iter().find(|e| e.name == n);
                if e.is_none() {
                    self.push(Problem::UnknownEntity {
                        path: join(&path, "entity"),
                        name: n.to_owned(),
                    });
                }
                e
            });
            let mut rules = Vec::new();
            for rule in Rule::ALL {
                let rpath = join(&path, rule.key());
                let Some(src) = self.opt_str(o, &path, rule.key()) else {
                    continue;
                };
                match crate::policy::parse(src) {
                    Ok(expr) => {
                        if let Some(e) = entity {
                            for (_, segs) in expr.paths() {
                                if !e.has_column(&segs[0]) {
                                    self.push(Problem::UnknownField {
                                        path: rpath.clone(),
                                        entity: e.name.clone(),
                                        field: segs[0].clone(),
                                    });
                                }
                            }
                        }
                        rules.push((rule, expr));
                    }
                    Err(error) => self.push(Problem::PolicyParse { path: rpath, error }),
                }
            }
            let declared = Rule::ALL
                .iter()
                .any(|r| !matches!(o.get(r.key()), None | Some(Json::Null)));
            if !declared {
                self.push(Problem::EmptyPolicy { path: path.clone() });
            }
            if let (Some(n), Some(e)) = (name, entity) {
                out.push(Policy::new(n, e.name.clone(), rules));
            }
        }
        Policies::new(out)
    }

    /// A non-empty string at `path.key`, if present.
    fn opt_nonempty(&mut self, o: &Map<String, Json>, path: &str, key: &str) -> Option<String> {
        let s = self.opt_str(o, path, key)?;
        if s.is_empty() {
            self.push(Problem::EmptyString {
                path: join(path, key),
            });
            return None;
        }
        Some(s.to_owned())
    }

    /// A whole number from `min` to `max` at `path.key`, or `default`.
    fn ranged(
        &mut self,
        o: &Map<String, Json>,
        path: &str,
        key: &str,
        default: u64,
        (min, max): (u64, u64),
    ) -> u64 {
        match o.get(key) {
            None | Some(Json::Null) => default,
            Some(Json::Number(n)) if n.as_u64().is_some_and(|v| (min..=max).contains(&v)) => {
                n.as_u64().unwrap_or(default)
            }
            Some(_) => {
                self.push(Problem::OutOfRange {
                    path: join(path, key),
                    min,
                    max,
                });
                default
            }
        }
    }

    /// `auth.jwks`: where RS256/ES256 keys come from and how long they are
    /// kept (see docs/auth.md and `auth::jwks`).
    fn jwks(&mut self, v: &Json) -> Option<JwksPolicy> {
        let path = "auth.jwks";
        let o = self.object(v, path)?;
        self.known_keys(o, path, JWKS_KEYS);
        let url = self.req_str(o, path, "url").and_then(|u| {
            jwks::check_url(u)
                .map_err(|reason| {
                    self.push(Problem::InvalidUrl {
                        path: join(path, "url"),
                        reason,
                    })
                })
                .ok()
                .map(|()| u.to_owned())
        });
        let d = JwksPolicy::new("");
        let ttl = (jwks::MIN_TTL_SECS, jwks::MAX_TTL_SECS);
        let cache_secs = self.ranged(o, path, "cacheSeconds", d.cache_secs, ttl);
        let min_refresh_secs =
            self.ranged(o, path, "minRefreshSeconds", d.min_refresh_secs, (1, 3_600));
        let max_stale_secs = self.ranged(
            o,
            path,
            "maxStaleSeconds",
            d.max_stale_secs,
            (0, 7 * 86_400),
        );
        let mut algorithms = Vec::new();
        let list = match o.get("algorithms") {
            None | Some(Json::Null) => None,
            Some(_) => Some(self.opt_array(o, path, "algorithms")),
        };
        for (i, a) in list.unwrap_or_default().iter().enumerate() {
            match a.as_str().and_then(Alg::parse) {
                Some(alg @ (Alg::Rs256 | Alg::Es256)) if !algorithms.contains(&alg) => {
                    algorithms.push(alg)
                }
                _ => self.wrong(
                    a,
                    &format!("{path}.algorithms[{i}]"),
                    "\"RS256\" or \"ES256\"",
                ),
            }
        }
        if list.is_none() {
            algorithms = d.algorithms;
        } else if algorithms.is_empty() {
            self.push(Problem::EmptyString {
                path: join(path, "algorithms"),
            });
        }
        Some(JwksPolicy {
            url: url?,
            cache_secs,
            min_refresh_secs,
            max_stale_secs,
            algorithms,
        })
    }

    /// The `auth` section (see docs/auth.md).
    fn auth(&mut self, v: &Json) -> AuthConfig {
        let mut config = AuthConfig::default();
        let Some(o) = self.object(v, "auth") else {
            return config;
        };
        self.known_keys(o, "auth", AUTH_KEYS);
        config.anonymous = self.opt_bool(o, "auth", "anonymous");
        config.validation = Validation {
            issuer: self.opt_nonempty(o, "auth", "issuer"),
            audience: self.opt_nonempty(o, "auth", "audience"),
            clock_skew_secs: match o.get("clockSkewSeconds") {
                None | Some(Json::Null) => Validation::default().clock_skew_secs,
                Some(Json::Number(n)) if n.as_u64().is_some_and(|s| s <= MAX_CLOCK_SKEW) => {
                    n.as_u64().unwrap_or_default()
                }
                Some(_) => {
                    self.push(Problem::OutOfRange {
                        path: "auth.clockSkewSeconds".into(),
                        min: 0,
                        max: MAX_CLOCK_SKEW,
                    });
                    0
                }
            },
        };
        if let Some(j) = o.get("jwks").filter(|j| !j.is_null()) {
            config.jwks = self.jwks(j);
        }
        if let Some(c) = o.get("claims").filter(|c| !c.is_null()) {
            if let Some(c) = self.object(c, "auth.claims") {
                self.known_keys(c, "auth.claims", CLAIM_KEYS);
                let d = ClaimNames::default();
                let path = "auth.claims";
                // An explicit null switches a mapping off (userId cannot be).
                let mapped = |cx: &mut Cx, key: &str, default: Option<String>| match c.get(key) {
                    None => default,
                    Some(Json::Null) => None,
                    Some(_) => cx.opt_nonempty(c, path, key),
                };
                config.claims = ClaimNames {
                    user_id: match c.get("userId") {
                        None => d.user_id,
                        Some(Json::Null) => {
                            self.push(Problem::WrongType {
                                path: "auth.claims.userId".into(),
                                expected: "a claim name",
                                given: "null",
                            });
                            d.user_id
                        }
                        Some(_) => self.opt_nonempty(c, path, "userId").unwrap_or(d.user_id),
                    },
                    tenant_id: mapped(self, "tenantId", d.tenant_id),
                    roles: mapped(self, "roles", d.roles),
                    is_admin: mapped(self, "isAdmin", d.is_admin),
                };
            }
        }
        for (i, r) in self.opt_array(o, "auth", "shards").iter().enumerate() {
            let path = format!("auth.shards[{i}]");
            let Some(r) = self.object(r, &path) else {
                continue;
            };
            self.known_keys(r, &path, SHARD_RULE_KEYS);
            let allow_anonymous = match r.get("allowAnonymous") {
                None | Some(Json::Null) => config.anonymous,
                Some(_) => self.opt_bool(r, &path, "allowAnonymous"),
            };
            let mut roles = Vec::new();
            for (j, role) in self.opt_array(r, &path, "roles").iter().enumerate() {
                match role {
                    Json::String(s) if !s.is_empty() => roles.push(s.clone()),
                    _ => self.wrong(role, &format!("{path}.roles[{j}]"), "a role name"),
                }
            }
            let pattern = self.req_str(r, &path, "pattern").and_then(|p| {
                Pattern::parse(p)
                    .map_err(|reason| {
                        self.push(Problem::InvalidPattern {
                            path: join(&path, "pattern"),
                            reason,
                        })
                    })
                    .ok()
            });
            if let Some(pattern) = pattern {
                config.shards.push(ShardRule {
                    pattern,
                    allow_anonymous,
                    roles,
                });
            }
        }
        config
    }
}
