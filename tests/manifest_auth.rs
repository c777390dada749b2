//! The manifest's `auth` section: loading, defaults and problems with paths.

use pylon_workers::manifest::Manifest;
use pylon_workers::policy::AuthContext;
use serde_json::json;

fn with_auth(auth: serde_json::Value) -> Result<Manifest, Vec<(String, &'static str)>> {
    let m = json!({"entities": [{"name": "T", "fields": []}], "auth": auth});
    Manifest::from_value(m).map_err(|e| {
        e.problems()
            .iter()
            .map(|p| (p.path().to_owned(), p.code()))
            .collect()
    })
}

#[test]
fn absent_means_tokens_required() {
    let m = Manifest::from_value(json!({"entities": []})).unwrap();
    assert!(!m.auth().anonymous);
    assert_eq!(
        m.auth().admit("x", None).unwrap_err().reason(),
        "MISSING_TOKEN"
    );
}

#[test]
fn full_section_loads() {
    let m = with_auth(json!({
        "anonymous": false,
        "issuer": "https://id.example",
        "audience": "pylon",
        "clockSkewSeconds": 30,
        "claims": {"userId": "uid", "tenantId": "org", "roles": "perms", "isAdmin": null},
        "shards": [
            {"pattern": "team:{tenantId}"},
            {"pattern": "ops:*", "roles": ["ops"]},
            {"pattern": "*", "allowAnonymous": true}
        ]
    }))
    .unwrap();
    let a = m.auth();
    assert_eq!(a.validation.issuer.as_deref(), Some("https://id.example"));
    assert_eq!(a.validation.clock_skew_secs, 30);
    assert_eq!(a.claims.user_id, "uid");
    assert_eq!(a.claims.tenant_id.as_deref(), Some("org"));
    assert_eq!(a.claims.is_admin, None);
    assert_eq!(a.shards.len(), 3);
    assert!(a.admit("lobby", None).is_ok());
    let acme = AuthContext::user("u").with_tenant("acme");
    assert!(a.admit("team:acme", Some(&acme)).is_ok());
    assert_eq!(
        a.admit("team:b", Some(&acme)).unwrap_err().code(),
        "FORBIDDEN"
    );
    assert_eq!(
        a.admit("ops:1", Some(&acme)).unwrap_err().code(),
        "FORBIDDEN"
    );
}

#[test]
fn rules_inherit_top_level_anonymous() {
    let m = with_auth(json!({"anonymous": true, "shards": [{"pattern": "room-*"}]})).unwrap();
    assert!(m.auth().admit("room-1", None).is_ok());
    assert_eq!(
        m.auth().admit("lobby", None).unwrap_err().code(),
        "FORBIDDEN"
    );
}

#[test]
fn problems_have_paths() {
    let e = with_auth(json!({
        "anonymous": "yes",
        "issuer": "",
        "clockSkewSeconds": 99999,
        "claims": {"userId": null, "tenant": "t"},
        "shards": [{"pattern": "team:{org}"}, {"allowAnonymous": 1, "roles": [3]}, 7],
        "extra": 1
    }))
    .unwrap_err();
    let want = [
        ("auth.extra", "UNKNOWN_KEY"),
        ("auth.anonymous", "WRONG_TYPE"),
        ("auth.issuer", "EMPTY_STRING"),
        ("auth.clockSkewSeconds", "OUT_OF_RANGE"),
        ("auth.claims.tenant", "UNKNOWN_KEY"),
        ("auth.claims.userId", "WRONG_TYPE"),
        ("auth.shards[0].pattern", "INVALID_PATTERN"),
        ("auth.shards[1].allowAnonymous", "WRONG_TYPE"),
        ("auth.shards[1].roles[0]", "WRONG_TYPE"),
        ("auth.shards[1]", "MISSING_KEY"),
        ("auth.shards[2]", "WRONG_TYPE"),
    ];
    let mut got = e.clone();
    got.sort();
    let mut want: Vec<_> = want.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        with_auth(json!([])).unwrap_err(),
        [("auth".to_string(), "WRONG_TYPE")]
    );
}

#[test]
fn example_schema_auth() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/board/schema.json"
    ))
    .unwrap();
    let m = Manifest::from_json_str(&text).unwrap();
    let a = m.auth();
    // curl against any ordinary shard keeps working without a token.
    assert!(a.admit("room-1", None).is_ok());
    assert_eq!(
        a.admit("team:acme", None).unwrap_err().reason(),
        "MISSING_TOKEN"
    );
    let acme = AuthContext::user("u").with_tenant("acme");
    assert!(a.admit("team:acme", Some(&acme)).is_ok());
    assert_eq!(
        a.admit("team:other", Some(&acme)).unwrap_err().reason(),
        "SHARD_DENIED"
    );
}

#[test]
fn jwks_section_loads_with_defaults() {
    use pylon_workers::auth::Alg;
    let m = with_auth(json!({"jwks": {"url": "https://id.example/jwks.json"}})).unwrap();
    let j = m.auth().jwks.clone().unwrap();
    assert_eq!(j.url, "https://id.example/jwks.json");
    assert_eq!(
        (j.cache_secs, j.min_refresh_secs, j.max_stale_secs),
        (600, 30, 3600)
    );
    assert_eq!(j.algorithms, vec![Alg::Rs256, Alg::Es256]);
    let m = with_auth(
        json!({"jwks": {"url": "http://127.0.0.1:9000/k", "cacheSeconds": 60,
        "minRefreshSeconds": 2, "maxStaleSeconds": 0, "algorithms": ["ES256"]}}),
    )
    .unwrap();
    let j = m.auth().jwks.clone().unwrap();
    assert_eq!(
        (j.cache_secs, j.min_refresh_secs, j.max_stale_secs),
        (60, 2, 0)
    );
    assert_eq!(j.algorithms, vec![Alg::Es256]);
    assert!(with_auth(json!({})).unwrap().auth().jwks.is_none());
}

#[test]
fn jwks_problems_have_paths() {
    let problems = with_auth(json!({"jwks": {
        "url": "http://id.example/jwks.json",
        "cacheSeconds": 5,
        "minRefreshSeconds": 0,
        "algorithms": ["HS256", "none"],
        "extra": 1
    }}))
    .unwrap_err();
    for want in [
        ("auth.jwks.url", "INVALID_URL"),
        ("auth.jwks.cacheSeconds", "OUT_OF_RANGE"),
        ("auth.jwks.minRefreshSeconds", "OUT_OF_RANGE"),
        ("auth.jwks.algorithms[0]", "WRONG_TYPE"),
        ("auth.jwks.algorithms[1]", "WRONG_TYPE"),
        ("auth.jwks.extra", "UNKNOWN_KEY"),
    ] {
        assert!(
            problems.iter().any(|(p, c)| (p.as_str(), *c) == want),
            "{want:?} in {problems:?}"
        );
    }
    let missing = with_auth(json!({"jwks": {}})).unwrap_err();
    assert_eq!(missing, vec![("auth.jwks".to_owned(), "MISSING_KEY")]);
}

/// The cold path and the directory identify their caller with
/// `identify_caller`: no token is refused unless `anonymous` is true.
#[test]
fn cross_shard_callers_need_a_token_unless_anonymous() {
    let closed = with_auth(json!({"anonymous": false})).unwrap();
    let e = closed.auth().identify_caller(None).unwrap_err();
    assert_eq!((e.status(), e.reason()), (401, "MISSING_TOKEN"));
    let u = AuthContext::user("u");
    assert_eq!(closed.auth().identify_caller(Some(u.clone())).unwrap(), u);
    let open = with_auth(json!({"anonymous": true})).unwrap();
    assert_eq!(
        open.auth().identify_caller(None).unwrap(),
        AuthContext::anonymous()
    );
}
