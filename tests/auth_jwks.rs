//! RS256 / ES256 tokens through `auth::verify_token` with the JWKS cache,
//! natively: the test keys in tests/fixtures/jwt, a key set served by an
//! in-process `HttpClient` that counts its requests (the Worker's `fetch()`
//! and a real JWKS server are exercised by the e2e suite).

use std::cell::{Cell, RefCell};

use futures_util::FutureExt;
use pylon_workers::auth::jwks::{JwksCache, JwksPolicy};
use pylon_workers::auth::sign::{
    es256_key_from_pem, jwk_es256, jwk_rs256, rs256_key_from_pem, sign_es256, sign_rs256,
    sign_rs256_with_header, Es256Key, Rs256Key,
};
use pylon_workers::auth::{
    jwt, verify_token, AuthConfig, AuthError, Jwks, Keys, RustCrypto, Validation,
};
use pylon_workers::http::{HttpClient, HttpError, HttpRequest, HttpResponse};
use pylon_workers::policy::AuthContext;
use serde_json::{json, Value as Json};

const NOW: i64 = 1_900_000_000;
const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

struct TestKeys {
    rsa_a: Rs256Key,
    rsa_b: Rs256Key,
    ec_a: Es256Key,
    ec_b: Es256Key,
}

fn keys() -> TestKeys {
    TestKeys {
        rsa_a: rs256_key_from_pem(&fixture("rsa-a.pem")).unwrap(),
        rsa_b: rs256_key_from_pem(&fixture("rsa-b.pem")).unwrap(),
        ec_a: es256_key_from_pem(&fixture("ec-a.pem")).unwrap(),
        ec_b: es256_key_from_pem(&fixture("ec-b.pem")).unwrap(),
    }
}

/// Serves `doc` (or fails when `down`), counting requests.
#[derive(Default)]
struct Served {
    doc: RefCell<Json>,
    down: Cell<bool>,
    hits: Cell<u32>,
    cache_control: RefCell<Option<String>>,
}

impl HttpClient for Served {
    async fn send(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        assert_eq!(req.url, "https://id.example.com/jwks.json");
        self.hits.set(self.hits.get() + 1);
        if self.down.get() {
            return Err(HttpError::Network("connection refused".into()));
        }
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(cc) = self.cache_control.borrow().clone() {
            headers.push(("cache-control".into(), cc));
        }
        Ok(HttpResponse {
            status: 200,
            headers,
            body: self.doc.borrow().to_string().into_bytes(),
        })
    }
}

struct World {
    config: AuthConfig,
    policy: JwksPolicy,
    cache: RefCell<JwksCache>,
    http: Served,
    secret: Option<&'static [u8]>,
}

impl World {
    fn new(doc: Json) -> World {
        let policy = JwksPolicy {
            min_refresh_secs: 10,
            max_stale_secs: 100,
            ..JwksPolicy::new("https://id.example.com/jwks.json")
        };
        World {
            config: AuthConfig {
                validation: Validation {
                    audience: Some("pylon".into()),
                    ..Validation::default()
                },
                jwks: Some(policy.clone()),
                ..AuthConfig::default()
            },
            policy,
            cache: RefCell::new(JwksCache::default()),
            http: Served {
                doc: RefCell::new(doc),
                ..Served::default()
            },
            secret: Some(SECRET),
        }
    }

    fn verify(&self, token: &str, now: i64) -> Result<AuthContext, AuthError> {
        let keys = Keys {
            secret: self.secret,
            jwks: Some(Jwks {
                policy: &self.policy,
                cache: &self.cache,
                http: &self.http,
                check: &RustCrypto,
            }),
        };
        // The served client answers at once: nothing here really waits.
        verify_token(&self.config, token, &keys, now)
            .now_or_never()
            .expect("no real I/O")
    }

    fn reason(&self, token: &str, now: i64) -> &'static str {
        self.verify(token, now)
            .map(|_| "OK")
            .unwrap_or_else(|e| e.reason())
    }
}

fn claims(extra: Json) -> Json {
    let mut c = json!({"sub": "ann", "aud": "pylon", "exp": NOW + 600});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn doc(k: &TestKeys) -> Json {
    json!({"keys": [jwk_rs256(&k.rsa_a, "rsa-a"), jwk_es256(&k.ec_a, "ec-a")]})
}

#[test]
fn rs256_and_es256_verify_and_map_claims() {
    let k = keys();
    let w = World::new(doc(&k));
    let rs = sign_rs256(&claims(json!({"tenant": "acme"})), Some("rsa-a"), &k.rsa_a);
    let es = sign_es256(&claims(json!({"roles": ["ops"]})), Some("ec-a"), &k.ec_a);
    assert_eq!(
        w.verify(&rs, NOW).unwrap(),
        AuthContext::user("ann").with_tenant("acme")
    );
    assert_eq!(
        w.verify(&es, NOW).unwrap(),
        AuthContext::user("ann").with_roles(["ops"])
    );
    // No kid: any key of the token's type may check it.
    let no_kid = sign_es256(&claims(json!({})), None, &k.ec_a);
    assert_eq!(w.reason(&no_kid, NOW), "OK");
    // One fetch served all of them.
    assert_eq!(w.http.hits.get(), 1);
    // HS256 still works beside the JWKS.
    assert_eq!(
        w.reason(&jwt::sign_hs256(&claims(json!({})), SECRET), NOW),
        "OK"
    );
}

#[test]
fn failures_have_their_reasons() {
    let k = keys();
    let w = World::new(doc(&k));
    // Signed by a key that is not published, under a published kid.
    let forged = sign_rs256(&claims(json!({})), Some("rsa-a"), &k.rsa_b);
    assert_eq!(w.reason(&forged, NOW), "BAD_SIGNATURE");
    let forged_ec = sign_es256(&claims(json!({})), Some("ec-a"), &k.ec_b);
    assert_eq!(w.reason(&forged_ec, NOW), "BAD_SIGNATURE");
    let expired = sign_rs256(&claims(json!({"exp": NOW - 3600})), Some("rsa-a"), &k.rsa_a);
    assert_eq!(w.reason(&expired, NOW), "EXPIRED");
    let aud = sign_es256(&claims(json!({"aud": "other"})), Some("ec-a"), &k.ec_a);
    assert_eq!(w.reason(&aud, NOW), "WRONG_AUDIENCE");
    let unknown = sign_rs256(&claims(json!({})), Some("nope"), &k.rsa_a);
    assert_eq!(w.reason(&unknown, NOW), "UNKNOWN_KEY");
    // A payload swapped under a good signature.
    let good = sign_rs256(&claims(json!({})), Some("rsa-a"), &k.rsa_a);
    let admin = sign_rs256(&claims(json!({"admin": true})), Some("rsa-a"), &k.rsa_b);
    let parts: Vec<&str> = good.split('.').collect();
    let swapped = format!(
        "{}.{}.{}",
        parts[0],
        admin.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(w.reason(&swapped, NOW), "BAD_SIGNATURE");
}

#[test]
fn algorithm_confusion_is_refused() {
    let k = keys();
    let w = World::new(doc(&k));
    let c = claims(json!({}));
    // The classic attack: HS256 "signed" with the public key as the secret.
    let public = jwk_rs256(&k.rsa_a, "rsa-a").to_string();
    let hs = jwt::sign_with_header(
        &json!({"alg": "HS256", "kid": "rsa-a"}),
        &c,
        public.as_bytes(),
    );
    assert_eq!(w.reason(&hs, NOW), "BAD_SIGNATURE");
    // An ES256 header on an RSA kid: no EC key has that kid.
    let es_on_rsa = sign_es256(&c, Some("rsa-a"), &k.ec_a);
    assert_eq!(w.reason(&es_on_rsa, NOW), "UNKNOWN_KEY");
    // RS256 claimed, EC key named.
    let rs_on_ec = sign_rs256_with_header(&json!({"alg": "RS256", "kid": "ec-a"}), &c, &k.rsa_a);
    assert_eq!(w.reason(&rs_on_ec, NOW), "UNKNOWN_KEY");
    for alg in ["none", "RS384", "PS256", "ES384", "EdDSA"] {
        let t = sign_rs256_with_header(&json!({"alg": alg, "kid": "rsa-a"}), &c, &k.rsa_a);
        assert_eq!(w.reason(&t, NOW), "BAD_TOKEN", "{alg}");
    }
    // Only configured algorithms: an RS256-only deployment refuses ES256.
    let mut rs_only = World::new(doc(&k));
    rs_only.policy.algorithms = vec![pylon_workers::auth::Alg::Rs256];
    let es = sign_es256(&c, Some("ec-a"), &k.ec_a);
    assert_eq!(rs_only.reason(&es, NOW), "BAD_TOKEN");
    // No JWKS configured: RS256 is not accepted at all.
    let hs_only = Keys::secret_only(Some(SECRET));
    let rs = sign_rs256(&c, Some("rsa-a"), &k.rsa_a);
    let r = verify_token(&w.config, &rs, &hs_only, NOW)
        .now_or_never()
        .unwrap();
    assert_eq!(r.unwrap_err().reason(), "BAD_TOKEN");
    // JWKS without a secret: HS256 is not accepted (401, not a 500).
    let mut no_secret = World::new(doc(&k));
    no_secret.secret = None;
    assert_eq!(
        no_secret.reason(&jwt::sign_hs256(&c, SECRET), NOW),
        "BAD_TOKEN"
    );
}

#[test]
fn unknown_kids_refetch_at_most_once_per_interval() {
    let k = keys();
    let w = World::new(doc(&k));
    let good = sign_rs256(&claims(json!({})), Some("rsa-a"), &k.rsa_a);
    assert_eq!(w.reason(&good, NOW), "OK");
    assert_eq!(w.http.hits.get(), 1);
    // A flood of random kids within the interval: no fetch at all.
    for i in 0..100 {
        let t = sign_rs256(&claims(json!({})), Some(&format!("rnd-{i}")), &k.rsa_a);
        assert_eq!(w.reason(&t, NOW + 5), "UNKNOWN_KEY");
    }
    assert_eq!(w.http.hits.get(), 1);
    // After it: one fetch for the whole next flood.
    for i in 0..100 {
        let t = sign_rs256(&claims(json!({})), Some(&format!("rnd2-{i}")), &k.rsa_a);
        assert_eq!(w.reason(&t, NOW + 11), "UNKNOWN_KEY");
    }
    assert_eq!(w.http.hits.get(), 2);
    assert_eq!(w.reason(&good, NOW + 12), "OK");
}

#[test]
fn rotation_is_picked_up_by_kid() {
    let k = keys();
    let w = World::new(doc(&k));
    let old = sign_rs256(&claims(json!({})), Some("rsa-a"), &k.rsa_a);
    assert_eq!(w.reason(&old, NOW), "OK");
    // The provider rotates: rsa-b in, rsa-a out.
    *w.http.doc.borrow_mut() = json!({"keys": [jwk_rs256(&k.rsa_b, "rsa-b")]});
    let new = sign_rs256(&claims(json!({})), Some("rsa-b"), &k.rsa_b);
    assert_eq!(w.reason(&new, NOW + 10), "OK", "an unknown kid refetches");
    assert_eq!(w.http.hits.get(), 2);
    assert_eq!(
        w.reason(&old, NOW + 10),
        "UNKNOWN_KEY",
        "the retired key is gone"
    );
}

#[test]
fn a_down_endpoint_serves_cached_keys_for_a_bounded_time() {
    let k = keys();
    // Nothing cached and the endpoint down: 503 JWKS_UNAVAILABLE.
    let cold = World::new(doc(&k));
    cold.http.down.set(true);
    let t = sign_es256(&claims(json!({"exp": NOW + 10_000})), Some("ec-a"), &k.ec_a);
    let e = cold.verify(&t, NOW).unwrap_err();
    assert_eq!(
        (e.status(), e.code(), e.reason()),
        (503, "UNAVAILABLE", "JWKS_UNAVAILABLE")
    );
    // Not retried at once; retried after the interval, and then it works.
    assert_eq!(cold.reason(&t, NOW + 1), "JWKS_UNAVAILABLE");
    assert_eq!(cold.http.hits.get(), 1);
    cold.http.down.set(false);
    assert_eq!(cold.reason(&t, NOW + 10), "OK");

    // Cached, then down: fresh keys serve, then stale ones up to maxStale.
    let w = World::new(doc(&k));
    *w.http.cache_control.borrow_mut() = Some("max-age=120".into());
    assert_eq!(w.reason(&t, NOW), "OK");
    w.http.down.set(true);
    assert_eq!(w.reason(&t, NOW + 119), "OK");
    assert_eq!(w.http.hits.get(), 1, "no fetch while fresh");
    assert_eq!(
        w.reason(&t, NOW + 120),
        "OK",
        "stale after a failed refresh"
    );
    assert_eq!(w.http.hits.get(), 2);
    assert_eq!(w.reason(&t, NOW + 219), "OK");
    assert_eq!(w.reason(&t, NOW + 220), "JWKS_UNAVAILABLE", "too stale");
    // Back up: the next allowed refresh restores service.
    w.http.down.set(false);
    assert_eq!(w.reason(&t, NOW + 231), "OK");
}

#[test]
fn a_set_without_usable_keys_is_a_failed_fetch() {
    let k = keys();
    let w = World::new(json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}));
    let t = sign_rs256(&claims(json!({})), Some("rsa-a"), &k.rsa_a);
    assert_eq!(w.reason(&t, NOW), "JWKS_UNAVAILABLE");
    *w.http.doc.borrow_mut() = json!("not a jwks");
    assert_eq!(w.reason(&t, NOW + 10), "JWKS_UNAVAILABLE");
}
