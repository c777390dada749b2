//! The JWKS key cache: when to fetch the key set, what to serve while it
//! cannot be fetched, and the fetch itself over any [`HttpClient`].
//!
//! The decisions are plain functions of the cache and the time, so they are
//! tested without a network; [`key_set`] drives them with a real client.
//!
//! * Keys are used for a TTL: the response's `Cache-Control: max-age`, else
//!   `cacheSeconds`, clamped to [`MIN_TTL_SECS`]..=[`MAX_TTL_SECS`].
//! * A token whose `kid` the cached set lacks makes the cache refetch, but
//!   fetches (of any cause) start at most once per `minRefreshSeconds` and
//!   one at a time, so a flood of random `kid`s costs the JWKS endpoint at
//!   most one request per interval per isolate.
//! * When a refresh fails, the old keys keep serving for `maxStaleSeconds`
//!   past their TTL; after that, or with nothing cached, verification
//!   fails with `JWKS_UNAVAILABLE` (503).
//!
//! ```
//! use pylon_workers::auth::jwks::{JwksCache, JwksPolicy, Next};
//! let policy = JwksPolicy::new("http://127.0.0.1:9/jwks.json");
//! let mut cache = JwksCache::default();
//! assert_eq!(cache.next(&policy, 1_000), Next::Fetch); // nothing cached yet
//! cache.fetch_failed(1_000);
//! assert_eq!(cache.next(&policy, 1_001), Next::Unavailable); // and not again at once
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use super::error::AuthError;
use super::jwk::KeySet;
use super::jwt::Alg;
use crate::http::{HttpClient, HttpRequest};

/// Bounds on how long a fetched key set is used without refetching.
pub const MIN_TTL_SECS: u64 = 60;
pub const MAX_TTL_SECS: u64 = 86_400;
/// How long one JWKS fetch may take.
pub const FETCH_TIMEOUT_MS: u32 = 5_000;

/// The manifest's `auth.jwks` (docs/auth.md), with the URL resolved (the
/// `PYLON_JWKS_URL` var overrides the manifest's `url`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwksPolicy {
    pub url: String,
    /// TTL when the response gives none (`cacheSeconds`, default 600).
    pub cache_secs: u64,
    /// Least time between two fetches (`minRefreshSeconds`, default 30).
    pub min_refresh_secs: u64,
    /// How long past their TTL keys serve while refreshes fail
    /// (`maxStaleSeconds`, default 3600).
    pub max_stale_secs: u64,
    /// Accepted algorithms (`algorithms`, default both).
    pub algorithms: Vec<Alg>,
}

impl JwksPolicy {
    /// The defaults, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        JwksPolicy {
            url: url.into(),
            cache_secs: 600,
            min_refresh_secs: 30,
            max_stale_secs: 3_600,
            algorithms: vec![Alg::Rs256, Alg::Es256],
        }
    }
}

/// Whether `url` may serve a JWKS: `https://`, or `http://` on a loopback
/// host (local development and tests).
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("not a URL".into());
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]") {
            return Err("use https:// (http:// only on 127.0.0.1 or localhost)".into());
        }
        r
    } else {
        return Err("use https://".into());
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err("the URL has no host".into());
    }
    Ok(())
}

/// A fetched key set.
#[derive(Clone, Debug)]
struct Fetched {
    keys: Rc<KeySet>,
    at: i64,
    ttl: i64,
}

/// What one isolate knows of the key set. Times are Unix seconds.
#[derive(Debug, Default)]
pub struct JwksCache {
    fetched: Option<Fetched>,
    last_attempt: Option<i64>,
    in_flight: bool,
    /// Fetches started (for tests and stats).
    pub fetches: u64,
    /// Why the last fetch failed, until the runtime takes it to log it.
    last_error: Option<String>,
}

/// What to do for a token, given the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Use these keys (fresh, or stale within bounds).
    Use(Rc<KeySet>),
    /// Fetch now (and call [`JwksCache::fetched`] / [`JwksCache::fetch_failed`]).
    Fetch,
    /// No usable keys and no fetch allowed now.
    Unavailable,
}

impl JwksCache {
    fn fresh(&self, now: i64) -> Option<Rc<KeySet>> {
        self.fetched
            .as_ref()
            .filter(|f| now < f.at + f.ttl)
            .map(|f| f.keys.clone())
    }

    fn usable(&self, p: &JwksPolicy, now: i64) -> Option<Rc<KeySet>> {
        self.fetched
            .as_ref()
            .filter(|f| now < f.at + f.ttl + p.max_stale_secs as i64)
            .map(|f| f.keys.clone())
    }

    /// Whether a fetch may start now.
    pub fn may_fetch(&self, p: &JwksPolicy, now: i64) -> bool {
        !self.in_flight
            && self
                .last_attempt
                .is_none_or(|t| now >= t + p.min_refresh_secs as i64)
    }

    /// The step for a token at `now`, before looking at its `kid`.
    pub fn next(&self, p: &JwksPolicy, now: i64) -> Next {
        if let Some(keys) = self.fresh(now) {
            return Next::Use(keys);
        }
        if self.may_fetch(p, now) {
            return Next::Fetch;
        }
        self.usable(p, now).map_or(Next::Unavailable, Next::Use)
    }

    /// The step for a token whose `kid` the keys from [`JwksCache::next`]
    /// lack: refetch if allowed, else the keys as they are.
    pub fn next_unknown_kid(&self, p: &JwksPolicy, now: i64) -> Next {
        if self.may_fetch(p, now) {
            return Next::Fetch;
        }
        self.usable(p, now).map_or(Next::Unavailable, Next::Use)
    }

    /// Marks a fetch as started at `now`.
    pub fn fetch_started(&mut self, now: i64) {
        self.in_flight = true;
        self.last_attempt = Some(now);
        self.fetches += 1;
    }

    /// Records a fetched set with its `max-age`, if the response gave one.
    pub fn fetched(&mut self, p: &JwksPolicy, keys: KeySet, max_age: Option<u64>, now: i64) {
        let ttl = max_age
            .unwrap_or(p.cache_secs)
            .clamp(MIN_TTL_SECS, MAX_TTL_SECS);
        self.in_flight = false;
        self.fetched = Some(Fetched {
            keys: Rc::new(keys),
            at: now,
            ttl: ttl as i64,
        });
    }

    /// Records a failed fetch; cached keys stay (see [`JwksCache::next`]).
    pub fn fetch_failed(&mut self, now: i64) {
        self.in_flight = false;
        self.last_attempt = Some(self.last_attempt.map_or(now, |t| t.max(now)));
    }

    fn abandon(&mut self) {
        self.in_flight = false;
    }

    /// Whether a fetch is under way (a caller without usable keys may wait
    /// for it rather than fail).
    pub fn fetch_in_flight(&self) -> bool {
        self.in_flight
    }

    /// The cause of the last failed fetch, once (for the runtime's log; it
    /// names the URL and the failure, never a token).
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }
}

/// `max-age` of a `Cache-Control` value (`no-cache`/`no-store` give 0,
/// which the TTL bounds raise to [`MIN_TTL_SECS`]).
pub fn max_age(cache_control: &str) -> Option<u64> {
    let mut age = None;
    for d in cache_control.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(0);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v.trim_matches('"').parse().ok();
        }
    }
    age
}

/// Fetches and parses the key set (the HTTP part of a refresh).
pub async fn fetch<C: HttpClient>(
    http: &C,
    p: &JwksPolicy,
) -> Result<(KeySet, Option<u64>), String> {
    let req = HttpRequest::get(&p.url)
        .header("accept", "application/json")
        .timeout_ms(FETCH_TIMEOUT_MS);
    let resp = http.send(req).await.map_err(|e| e.to_string())?;
    if !resp.is_success() {
        return Err(format!("the JWKS endpoint answered {}", resp.status));
    }
    let keys = KeySet::parse(&resp.body, &p.algorithms)?;
    if keys.is_empty() {
        return Err(format!(
            "the JWKS has no usable key ({} skipped)",
            keys.skipped
        ));
    }
    Ok((keys, resp.header_value("cache-control").and_then(max_age)))
}

/// Clears the in-flight mark if a fetch is dropped half-way (the request
/// that started it went away), so the cache never stays stuck.
struct InFlight<'a>(&'a RefCell<JwksCache>, bool);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.1 {
            if let Ok(mut c) = self.0.try_borrow_mut() {
                c.abandon();
            }
        }
    }
}

async fn refresh<C: HttpClient>(
    cache: &RefCell<JwksCache>,
    http: &C,
    p: &JwksPolicy,
    now: i64,
) -> Result<Rc<KeySet>, AuthError> {
    cache.borrow_mut().fetch_started(now);
    let mut guard = InFlight(cache, false);
    let result = fetch(http, p).await;
    guard.1 = true;
    let mut c = cache.borrow_mut();
    match result {
        Ok((keys, age)) => {
            c.fetched(p, keys, age, now);
            Ok(c.fresh(now).expect("just fetched"))
        }
        Err(why) => {
            c.fetch_failed(now);
            c.last_error = Some(format!("JWKS fetch from {} failed: {why}", p.url));
            c.usable(p, now).ok_or(AuthError::JwksUnavailable)
        }
    }
}

/// The keys to check a token with `alg` and `kid` at `now`: from the cache,
/// or fetched when the cache is empty, expired, or lacks `kid` (within the
/// refresh limits). The cache is never borrowed across the fetch.
pub async fn key_set<C: HttpClient>(
    cache: &RefCell<JwksCache>,
    http: &C,
    p: &JwksPolicy,
    alg: Alg,
    kid: Option<&str>,
    now: i64,
) -> Result<Rc<KeySet>, AuthError> {
    let step = cache.borrow().next(p, now);
    let keys = match step {
        Next::Use(keys) => keys,
        Next::Fetch => return refresh(cache, http, p, now).await,
        Next::Unavailable => return Err(AuthError::JwksUnavailable),
    };
    if keys.candidates(alg, kid).next().is_some() {
        return Ok(keys);
    }
    let step = cache.borrow().next_unknown_kid(p, now);
    match step {
        Next::Fetch => refresh(cache, http, p, now).await,
        Next::Use(keys) => Ok(keys),
        Next::Unavailable => Err(AuthError::JwksUnavailable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> JwksPolicy {
        JwksPolicy {
            min_refresh_secs: 10,
            max_stale_secs: 100,
            ..JwksPolicy::new("http://127.0.0.1:9/")
        }
    }

    fn some_keys() -> KeySet {
        KeySet::default()
    }

    #[test]
    fn urls() {
        for ok in [
            "https://id.example.com/.well-known/jwks.json",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/jwks",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://id.example.com/jwks",
            "http://127.0.0.1.evil.com/x",
            "ftp://x/",
            "https://",
            "https:///x",
            "https://a b/",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ttl_is_bounded_and_follows_max_age() {
        let p = policy();
        let mut c = JwksCache::default();
        c.fetch_started(0);
        c.fetched(&p, some_keys(), Some(5), 0); // raised to the minimum
        assert!(matches!(c.next(&p, MIN_TTL_SECS as i64 - 1), Next::Use(_)));
        assert_eq!(c.next(&p, MIN_TTL_SECS as i64), Next::Fetch);
        c.fetch_started(100);
        c.fetched(&p, some_keys(), Some(10_000_000), 100); // lowered to the maximum
        assert!(matches!(
            c.next(&p, 100 + MAX_TTL_SECS as i64 - 1),
            Next::Use(_)
        ));
        assert_eq!(c.next(&p, 100 + MAX_TTL_SECS as i64), Next::Fetch);
        c.fetch_started(0);
        c.fetched(&p, some_keys(), None, 0); // cacheSeconds
        assert!(matches!(c.next(&p, 599), Next::Use(_)));
        assert_eq!(c.next(&p, 600), Next::Fetch);
        assert_eq!(max_age("public, max-age=300"), Some(300));
        assert_eq!(max_age("no-store"), Some(0));
        assert_eq!(max_age("private"), None);
    }

    #[test]
    fn refetches_are_rate_limited() {
        let p = policy();
        let mut c = JwksCache::default();
        assert_eq!(c.next(&p, 0), Next::Fetch);
        c.fetch_started(0);
        // One at a time: a second caller does not start another.
        assert_eq!(c.next(&p, 0), Next::Unavailable);
        c.fetched(&p, some_keys(), None, 1);
        // An unknown kid right after a fetch: no new fetch for 10 s.
        assert!(matches!(c.next_unknown_kid(&p, 5), Next::Use(_)));
        assert_eq!(c.next_unknown_kid(&p, 10), Next::Fetch);
        c.fetch_started(10);
        assert!(matches!(c.next_unknown_kid(&p, 10), Next::Use(_)));
    }

    #[test]
    fn stale_keys_serve_for_a_bounded_time() {
        let p = policy();
        let mut c = JwksCache::default();
        c.fetch_started(0);
        c.fetched(&p, some_keys(), None, 0); // ttl 600, stale until 700
        assert_eq!(c.next(&p, 600), Next::Fetch);
        c.fetch_started(600);
        c.fetch_failed(600);
        assert!(matches!(c.next(&p, 605), Next::Use(_)), "stale keys serve");
        assert_eq!(c.next(&p, 610), Next::Fetch, "retried after the interval");
        c.fetch_started(610);
        c.fetch_failed(610);
        assert!(matches!(c.next(&p, 615), Next::Use(_)));
        c.fetch_started(695);
        c.fetch_failed(695);
        assert!(matches!(c.next(&p, 699), Next::Use(_)));
        assert_eq!(c.next(&p, 700), Next::Unavailable, "too stale");
        assert_eq!(c.next(&p, 705), Next::Fetch);
        // With nothing cached, a failure is unavailable until the next try.
        let mut empty = JwksCache::default();
        empty.fetch_started(0);
        empty.fetch_failed(0);
        assert_eq!(empty.next(&p, 9), Next::Unavailable);
        assert_eq!(empty.next(&p, 10), Next::Fetch);
    }

    #[test]
    fn a_failed_fetch_leaves_its_cause_for_the_log() {
        let c = RefCell::new(JwksCache::default());
        let p = policy();
        let down = crate::auth::NoHttp;
        let r = futures_util::FutureExt::now_or_never(key_set(&c, &down, &p, Alg::Rs256, None, 0));
        assert_eq!(r, Some(Err(AuthError::JwksUnavailable)));
        let why = c.borrow_mut().take_error().unwrap();
        assert!(
            why.contains("http://127.0.0.1:9/") && why.contains("no HTTP client"),
            "{why}"
        );
        assert_eq!(c.borrow_mut().take_error(), None);
    }

    #[test]
    fn a_dropped_fetch_does_not_block_the_cache() {
        let c = RefCell::new(JwksCache::default());
        {
            c.borrow_mut().fetch_started(0);
            let _g = InFlight(&c, false);
        }
        assert!(!c.borrow().in_flight);
    }
}
