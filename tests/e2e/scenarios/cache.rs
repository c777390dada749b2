//! The cache under wrangler dev (docs/cache.md): keys set, read and
//! deleted (one with a `/`); 20 concurrent increments of one key sum
//! exactly; a `PX 1500` key is gone two seconds later; the command
//! endpoint's replies; bad keys, values, TTLs and commands get typed
//! errors; the board lets anyone read and only signed-in callers write;
//! multi-key commands over keys spread across the objects; the board's
//! keys are its shards' (`cache.scope: "shard"`), so a user's keys are
//! theirs alone; and a key without a TTL survives a `kill -9` of wrangler
//! (`after_restart`).

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use futures_util::future::join_all;
use pylon_workers::cache::{object_of, MAX_VALUE_BYTES};
use pylon_workers::http::percent_encode;
use serde_json::{json, Value};

use crate::support::{unique, within};
use crate::Ctx;

/// The key `run` leaves for `after_restart`, and its value.
static DURABLE: std::sync::Mutex<Option<(String, Value)>> = std::sync::Mutex::new(None);

struct Cache {
    base: String,
    http: reqwest::Client,
    user: String,
}

impl Cache {
    fn new(ctx: &Ctx) -> Result<Cache> {
        Ok(Cache {
            base: ctx.dev.http("/v1/cache"),
            http: reqwest::Client::new(),
            user: super::background::token("cache-user", false)?,
        })
    }

    /// `method` on `/v1/cache{path}`, signed in when `signed_in`: status
    /// and JSON body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        signed_in: bool,
    ) -> Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if signed_in {
            req = req.bearer_auth(&self.user);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = within(path, req.send()).await??;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    fn key_path(key: &str) -> String {
        format!("/{}", percent_encode(key))
    }

    async fn put(&self, key: &str, body: Value) -> Result<(u16, Value)> {
        self.call(
            reqwest::Method::PUT,
            &Self::key_path(key),
            Some(&body),
            true,
        )
        .await
    }

    async fn get(&self, key: &str) -> Result<(u16, Value)> {
        self.call(reqwest::Method::GET, &Self::key_path(key), None, false)
            .await
    }

    /// A command's reply (signed in); fails on a refusal.
    async fn cmd(&self, args: Value) -> Result<Value> {
        let (s, b) = self
            .call(
                reqwest::Method::POST,
                "",
                Some(&json!({ "cmd": args })),
                true,
            )
            .await?;
        ensure!(s == 200, "{args}: {s} {b}");
        Ok(b["reply"].clone())
    }
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or("")
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let c = Cache::new(ctx)?;
    // The board's cache keys are `{shard}/{name}`: this shard is open to
    // anyone (`*`).
    let p = format!("{}/k", unique("cache"));

    // Set, get (anonymous: the board's cache.read is anyone), delete; a
    // key with "/" and a space, percent-encoded in the path.
    let key = format!("{p}/profile 1");
    let value = json!({"name": "ann", "visits": [1, 2]});
    let (s, b) = c.put(&key, json!({ "value": value })).await?;
    ensure!(s == 200, "put: {s} {b}");
    let (s, b) = c.get(&key).await?;
    ensure!(
        s == 200 && b == json!({"value": value, "ttlMs": null}),
        "{s} {b}"
    );
    ensure!(
        c.cmd(json!(["GET", key])).await? == value.to_string(),
        "a command reads the same key"
    );
    let (s, b) = c
        .call(reqwest::Method::DELETE, &Cache::key_path(&key), None, true)
        .await?;
    ensure!(s == 200 && b["deleted"] == true, "{s} {b}");
    let (s, b) = c.get(&key).await?;
    ensure!(s == 404 && code(&b) == "NOT_FOUND", "{s} {b}");

    // 20 concurrent increments: each sees its own value, the sum is exact.
    let hits = format!("{p}-hits");
    let incr = Cache::key_path(&hits) + "/incr";
    let body = json!({"by": 1});
    let answers =
        join_all((0..20).map(|_| c.call(reqwest::Method::POST, &incr, Some(&body), true))).await;
    let mut seen = Vec::new();
    for a in answers {
        let (s, b) = a?;
        ensure!(s == 200, "incr: {s} {b}");
        seen.push(b["value"].as_i64().unwrap_or(-1));
    }
    seen.sort_unstable();
    ensure!(seen == (1..=20).collect::<Vec<_>>(), "{seen:?}");
    let (_, b) = c.get(&hits).await?;
    ensure!(b["value"] == 20, "{b}");

    // A key with PX 1500 (sleeps below overlap the other checks).
    let brief = format!("{p}-brief");
    ensure!(c.cmd(json!(["SET", brief, "v", "PX", "1500"])).await? == "OK");
    let set_at = std::time::Instant::now();
    ensure!(c.cmd(json!(["GET", brief])).await? == "v");
    let pttl = c.cmd(json!(["PTTL", brief])).await?;
    ensure!(
        pttl.as_i64().is_some_and(|ms| ms > 0 && ms <= 1500),
        "{pttl}"
    );

    // The command endpoint's replies.
    let n = format!("{p}-n");
    ensure!(c.cmd(json!(["PING"])).await? == "PONG");
    ensure!(c.cmd(json!(["INCRBY", n, 5])).await? == 5);
    ensure!(c.cmd(json!(["DECR", n])).await? == 4);
    ensure!(c.cmd(json!(["EXPIRE", n, 100])).await? == 1);
    ensure!(c.cmd(json!(["TTL", n])).await? == 100);
    ensure!(c.cmd(json!(["PERSIST", n])).await? == 1);
    ensure!(c.cmd(json!(["TTL", n])).await? == -1);
    ensure!(c.cmd(json!(["SET", n, "x", "NX"])).await? == Value::Null);
    ensure!(c.cmd(json!(["GETDEL", n])).await? == "4");
    ensure!(c.cmd(json!(["EXISTS", n])).await? == 0);

    // Typed errors.
    let big = json!({ "value": "x".repeat(MAX_VALUE_BYTES) });
    let long_key = "k".repeat(513);
    let bad_key = format!("{p}\u{1}");
    let cases: Vec<(reqwest::Method, String, Option<Value>, u16, &str)> = vec![
        (
            reqwest::Method::GET,
            Cache::key_path(&long_key),
            None,
            400,
            "BAD_KEY",
        ),
        (
            reqwest::Method::GET,
            Cache::key_path(&bad_key),
            None,
            400,
            "BAD_KEY",
        ),
        (reqwest::Method::GET, "/%E0%zz".into(), None, 400, "BAD_KEY"),
        (
            reqwest::Method::PUT,
            Cache::key_path(&n),
            Some(big),
            413,
            "VALUE_TOO_LARGE",
        ),
        (
            reqwest::Method::PUT,
            Cache::key_path(&n),
            Some(json!({"value": 1, "ttlMs": 0})),
            400,
            "BAD_TTL",
        ),
        (
            reqwest::Method::POST,
            String::new(),
            Some(json!({"cmd": ["SET", n, "v", "EX", 400 * 24 * 3600]})),
            400,
            "BAD_TTL",
        ),
        (
            reqwest::Method::POST,
            String::new(),
            Some(json!({"cmd": ["FLUSHALL"]})),
            400,
            "UNKNOWN_COMMAND",
        ),
        (
            reqwest::Method::POST,
            String::new(),
            Some(json!({"cmd": ["INCRBY", n]})),
            400,
            "BAD_COMMAND",
        ),
        (
            reqwest::Method::POST,
            Cache::key_path(&key) + "/incr",
            Some(json!({"by": "one"})),
            400,
            "BAD_REQUEST",
        ),
    ];
    for (method, path, body, status, want) in cases {
        let (s, b) = c.call(method.clone(), &path, body.as_ref(), true).await?;
        ensure!(
            s == status && code(&b) == want,
            "{method} {}: {s} {b}",
            &path[..path.len().min(60)]
        );
    }
    c.put(&key, json!({"value": "text"})).await?;
    let (s, b) = c
        .call(
            reqwest::Method::POST,
            &(Cache::key_path(&key) + "/incr"),
            None,
            true,
        )
        .await?;
    ensure!(s == 409 && code(&b) == "NOT_AN_INTEGER", "{s} {b}");

    // Who may: anyone reads, only signed-in callers write.
    let (s, b) = c
        .call(
            reqwest::Method::PUT,
            &Cache::key_path(&key),
            Some(&json!({"value": 1})),
            false,
        )
        .await?;
    ensure!(
        s == 401 && code(&b) == "UNAUTHORIZED",
        "anonymous put: {s} {b}"
    );
    let (s, b) = c
        .call(
            reqwest::Method::POST,
            "",
            Some(&json!({"cmd": ["DEL", key]})),
            false,
        )
        .await?;
    ensure!(s == 401, "anonymous DEL: {s} {b}");
    let (s, b) = c
        .call(
            reqwest::Method::POST,
            "",
            Some(&json!({"cmd": ["GET", key]})),
            false,
        )
        .await?;
    ensure!(s == 200 && b["reply"] == "text", "anonymous GET: {s} {b}");

    // Tenants: a key belongs to its shard, and the shard rules decide. The
    // board's `user:{userId}` is its user's alone.
    let mine = "user:cache-user/draft";
    let (s, b) = c.put(mine, json!({"value": "mine"})).await?;
    ensure!(s == 200, "own key: {s} {b}");
    let (s, b) = c.get(mine).await?;
    ensure!(
        s == 401 && code(&b) == "UNAUTHORIZED",
        "anonymous read of a user's key: {s} {b}"
    );
    let (s, b) = c
        .call(reqwest::Method::GET, &Cache::key_path(mine), None, true)
        .await?;
    ensure!(s == 200 && b["value"] == "mine", "{s} {b}");
    let theirs = "user:someone-else/draft";
    let (s, b) = c.put(theirs, json!({"value": "x"})).await?;
    ensure!(
        s == 403 && code(&b) == "FORBIDDEN",
        "another user's key: {s} {b}"
    );
    let (s, b) = c
        .call(
            reqwest::Method::POST,
            "",
            Some(&json!({"cmd": ["DEL", format!("{p}-free"), "team:acme/plan"]})),
            true,
        )
        .await?;
    ensure!(
        s == 403 && code(&b) == "FORBIDDEN",
        "a DEL with a tenant's key: {s} {b}"
    );
    let (s, b) = c.put("no-shard", json!({"value": 1})).await?;
    ensure!(
        s == 400 && code(&b) == "BAD_KEY",
        "a key without a shard: {s} {b}"
    );

    // 50 keys over the objects: multi-key commands split by object and
    // sum their replies.
    let keys: Vec<String> = (0..50).map(|i| format!("{p}-spread-{i}")).collect();
    let objects: std::collections::BTreeSet<usize> = keys.iter().map(|k| object_of(k)).collect();
    ensure!(objects.len() >= 4, "50 keys in {} objects", objects.len());
    let sets = join_all(keys.iter().map(|k| c.cmd(json!(["SET", k, k])))).await;
    for r in sets {
        ensure!(r? == "OK");
    }
    let mut exists = vec![json!("EXISTS")];
    exists.extend(keys.iter().map(|k| json!(k)));
    exists.push(json!(format!("{p}-absent")));
    let (s, b) = c
        .call(
            reqwest::Method::POST,
            "",
            Some(&json!({ "cmd": exists })),
            false,
        )
        .await?;
    ensure!(s == 200 && b["reply"] == 50, "EXISTS of 50 keys: {s} {b}");
    for k in keys.iter().step_by(7) {
        ensure!(c.cmd(json!(["GET", k])).await? == json!(k), "{k}");
    }
    let mut del = vec![json!("DEL")];
    del.extend(keys.iter().map(|k| json!(k)));
    ensure!(c.cmd(json!(del)).await? == 50);
    ensure!(c.cmd(json!(exists)).await? == 0);

    // A key for after the restart, without a TTL.
    let durable = format!("{p}-durable");
    let kept = json!({"kept": true, "n": 7});
    let (s, b) = c.put(&durable, json!({ "value": kept })).await?;
    ensure!(s == 200, "{s} {b}");
    *DURABLE.lock().unwrap() = Some((durable, kept));

    // The PX 1500 key, two seconds after it was set.
    let wait = Duration::from_millis(2_000).saturating_sub(set_at.elapsed());
    tokio::time::sleep(wait).await;
    ensure!(c.cmd(json!(["GET", brief])).await? == Value::Null);
    ensure!(c.cmd(json!(["PTTL", brief])).await? == -2);
    let (s, b) = c.get(&brief).await?;
    ensure!(s == 404 && code(&b) == "NOT_FOUND", "{s} {b}");
    Ok(())
}

/// After `restart::run`'s `kill -9` of wrangler: the key is still there.
pub async fn after_restart(ctx: &mut Ctx) -> Result<()> {
    let Some((key, value)) = DURABLE.lock().unwrap().take() else {
        bail!("cache::run did not run");
    };
    let c = Cache::new(ctx)?;
    let (s, b) = c.get(&key).await?;
    ensure!(
        s == 200 && b == json!({"value": value, "ttlMs": null}),
        "{s} {b}"
    );
    Ok(())
}
