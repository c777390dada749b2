//! The cold path and the directory, attacked: anonymous callers and
//! another tenant try to read `team:` and `user:` rows through
//! `POST /v1/query` (naming the shard, filtering on a value, no filter,
//! aggregates) and to list them through `GET /v1/shards`; named shards are
//! refused exactly as the shard refuses them, the rest never shows. Then
//! the byte bound (three 400 KiB rows page two and one), a body that never
//! ends (refused while streaming), and a D1 without migrations (503 that
//! names the command), the last on a second wrangler dev.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::jwt;
use pylon_workers::query::limits::MAX_RESULT_BYTES;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::auth::dev_secret;
use crate::support::{unique, within};
use crate::Ctx;

/// The example schema's audience.
const AUDIENCE: &str = "pylon-dev";
/// Longest wait for the shards' outboxes to reach D1.
const CONVERGE: Duration = Duration::from_secs(30);

pub(crate) fn token(secret: &str, sub: &str, extra: Value) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        + 600;
    let mut claims = json!({"sub": sub, "aud": AUDIENCE, "exp": exp});
    for (k, v) in extra.as_object().into_iter().flatten() {
        claims[k] = v.clone();
    }
    jwt::sign_hs256(&claims, secret.as_bytes())
}

/// An answer: status, JSON body, `WWW-Authenticate`, body length.
struct Answer {
    status: u16,
    body: Value,
    challenge: Option<String>,
    bytes: usize,
}

async fn send(req: reqwest::RequestBuilder, token: Option<&str>) -> Result<Answer> {
    let req = match token {
        Some(t) => req.header("Authorization", format!("Bearer {t}")),
        None => req,
    };
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = resp.bytes().await?;
    let body = serde_json::from_slice(&text)
        .with_context(|| format!("{status}: {}", String::from_utf8_lossy(&text)))?;
    Ok(Answer {
        status,
        body,
        challenge,
        bytes: text.len(),
    })
}

async fn post(url: &str, body: &Value, token: Option<&str>) -> Result<Answer> {
    send(reqwest::Client::new().post(url).json(body), token).await
}

async fn get(url: &str, token: Option<&str>) -> Result<Answer> {
    send(reqwest::Client::new().get(url), token).await
}

/// A mutation on a shard, as `token`'s caller.
async fn mutate(ctx: &Ctx, shard: &str, token: Option<&str>, ops: Vec<Value>) -> Result<()> {
    let url = ctx.dev.http(&format!("/v1/shards/{shard}/mutate"));
    let a = post(&url, &json!({"op": unique("op"), "ops": ops}), token).await?;
    ensure!(a.status == 200, "mutate {shard}: {} {}", a.status, a.body);
    Ok(())
}

fn card(id: &str, title: &str) -> Value {
    json!({"type": "insert", "entity": "Card", "row": {"id": id, "title": title, "done": false,
           "position": 1.0, "createdAt": "2026-11-23T00:00:00Z"}})
}

fn message(id: &str, author: &str, body: &str, seq: i64) -> Value {
    json!({"type": "insert", "entity": "Message", "row": {"id": id, "channelId": "general",
           "authorId": author, "body": body, "sentAt": "2026-11-23T00:00:00Z", "seq": seq}})
}

/// Every row of a cold query over all its pages (`limit` 1000).
async fn rows(ctx: &Ctx, mut body: Value, token: Option<&str>) -> Result<Vec<Value>> {
    body["limit"] = json!(1000);
    let mut out = Vec::new();
    loop {
        let a = post(&ctx.dev.http("/v1/query"), &body, token).await?;
        ensure!(a.status == 200, "{body}: {} {}", a.status, a.body);
        out.extend(a.body["rows"].as_array().cloned().unwrap_or_default());
        match a.body["next"].as_str() {
            Some(n) => body["after"] = json!(n),
            None => return Ok(out),
        }
    }
}

fn shards(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|r| r["_shard"].as_str().map(str::to_owned))
        .collect()
}

/// Every shard of the directory the caller is shown.
async fn directory(ctx: &Ctx, token: Option<&str>) -> Result<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    let mut after = String::new();
    loop {
        let a = get(
            &ctx.dev
                .http(&format!("/v1/shards?limit=1000&after={after}")),
            token,
        )
        .await?;
        ensure!(a.status == 200, "directory: {} {}", a.status, a.body);
        for s in a.body["shards"].as_array().into_iter().flatten() {
            out.insert(s["shard"].as_str().unwrap_or_default().to_owned());
        }
        match a.body["next"].as_str() {
            Some(n) => after = n.to_owned(),
            None => return Ok(out),
        }
    }
}

/// The cold path's refusal equals the shard's own for the same caller.
async fn refused_like_the_shard(
    ctx: &Ctx,
    what: &str,
    shard: &str,
    entity: &str,
    token: Option<&str>,
    status: u16,
    reason: &str,
) -> Result<()> {
    let own = post(
        &ctx.dev.http(&format!("/v1/shards/{shard}/query")),
        &json!({"entity": entity}),
        token,
    )
    .await?;
    for body in [
        json!({"entity": entity, "shard": shard}),
        json!({"entity": entity, "shard": shard, "aggregate": {"op": "count"}}),
    ] {
        let cold = post(&ctx.dev.http("/v1/query"), &body, token).await?;
        ensure!(
            cold.status == status && cold.body["error"]["reason"] == reason,
            "{what}: {} {}",
            cold.status,
            cold.body
        );
        ensure!(
            (cold.status, &cold.body, &cold.challenge) == (own.status, &own.body, &own.challenge),
            "{what}: the cold path answered {} {} {:?}, the shard {} {} {:?}",
            cold.status,
            cold.body,
            cold.challenge,
            own.status,
            own.body,
            own.challenge
        );
    }
    Ok(())
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let secret = dev_secret()?;
    let tag = unique("leak");
    let (acme, evil) = (unique("acme"), unique("evil"));
    let (ann, eve, uma) = (unique("ann"), unique("eve"), unique("uma"));
    let acme_t = token(&secret, &ann, json!({"tenant": acme}));
    let evil_t = token(&secret, &eve, json!({"tenant": evil}));
    let uma_t = token(&secret, &uma, json!({}));
    let admin_t = token(&secret, "root", json!({"admin": true}));
    let (team_acme, team_evil) = (format!("team:{acme}"), format!("team:{evil}"));
    let user_uma = format!("user:{uma}");
    let room = unique("room");

    // Three cards in each shard, two messages in each team.
    let shard_cards = [
        (&team_acme, Some(&acme_t), "acme"),
        (&team_evil, Some(&evil_t), "evil"),
        (&user_uma, Some(&uma_t), "uma"),
        (&room, None, "room"),
    ];
    for (shard, t, who) in shard_cards {
        let ops = (0..3)
            .map(|i| card(&format!("c{i}"), &format!("{tag} {who} {i}")))
            .collect();
        mutate(ctx, shard, t.map(String::as_str), ops).await?;
    }
    for (shard, t, author) in [(&team_acme, &acme_t, &ann), (&team_evil, &evil_t, &eve)] {
        let ops = (0..2)
            .map(|i| message(&format!("m{i}"), author, &format!("{tag} secret {i}"), i))
            .collect();
        mutate(ctx, shard, Some(t), ops).await?;
    }
    // D1 has them all (admin's view) within CONVERGE.
    let mine = json!({"entity": "Card", "where": {"title": {"$like": format!("{tag}%")}}});
    let started = Instant::now();
    loop {
        let cards = rows(ctx, mine.clone(), Some(&admin_t)).await?.len();
        let msgs = rows(
            ctx,
            json!({"entity": "Message", "where": {"body": {"$like": format!("{tag}%")}}}),
            Some(&admin_t),
        )
        .await?
        .len();
        if (cards, msgs) == (12, 4) {
            break;
        }
        if started.elapsed() > CONVERGE {
            bail!("D1 has {cards} cards and {msgs} messages of 12 and 4 after {CONVERGE:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Anonymous: the named team or user shard is refused as the shard refuses it.
    for shard in [&team_acme, &user_uma] {
        refused_like_the_shard(ctx, "anonymous", shard, "Card", None, 401, "MISSING_TOKEN").await?;
    }
    // No filter, a filter on a value, aggregates: no team or user rows.
    let seen = shards(&rows(ctx, mine.clone(), None).await?);
    ensure!(
        seen == BTreeSet::from([room.clone()]),
        "anonymous saw {seen:?}"
    );
    let by_value = json!({"entity": "Card", "where": {"title": format!("{tag} acme 0")}});
    let got = rows(ctx, by_value.clone(), None).await?;
    ensure!(
        got.is_empty(),
        "anonymous read acme's card by value: {got:?}"
    );
    let count = {
        let mut c = mine.clone();
        c["aggregate"] = json!({"op": "count", "groupBy": "title"});
        c
    };
    let a = post(&ctx.dev.http("/v1/query"), &count, None).await?;
    let groups: Vec<String> = a.body["aggregate"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| g["group"].as_str().unwrap_or_default().to_owned())
        .collect();
    ensure!(
        a.status == 200 && groups.len() == 3 && groups.iter().all(|g| g.contains(" room ")),
        "anonymous aggregate: {} {}",
        a.status,
        a.body
    );

    // Tenant evil: acme's shard refused, acme's messages absent.
    refused_like_the_shard(
        ctx,
        "evil",
        &team_acme,
        "Message",
        Some(&evil_t),
        403,
        "SHARD_DENIED",
    )
    .await?;
    let msgs = json!({"entity": "Message", "where": {"body": {"$like": format!("{tag}%")}}});
    let got = rows(ctx, msgs.clone(), Some(&evil_t)).await?;
    ensure!(
        got.len() == 2 && shards(&got) == BTreeSet::from([team_evil.clone()]),
        "evil's messages: {got:?}"
    );
    let got = rows(ctx, by_value, Some(&evil_t)).await?;
    ensure!(got.is_empty(), "evil read acme's card by value: {got:?}");
    let mut total = msgs.clone();
    total["aggregate"] = json!({"op": "count"});
    let a = post(&ctx.dev.http("/v1/query"), &total, Some(&evil_t)).await?;
    ensure!(
        a.body["aggregate"] == json!([{"value": 2}]),
        "evil counts messages: {}",
        a.body
    );
    // Tenant acme sees its own; the user sees theirs; the admin sees all.
    let got = rows(ctx, msgs.clone(), Some(&acme_t)).await?;
    ensure!(
        got.len() == 2 && shards(&got) == BTreeSet::from([team_acme.clone()]),
        "acme's messages: {got:?}"
    );
    let seen = shards(&rows(ctx, mine.clone(), Some(&acme_t)).await?);
    ensure!(
        seen == BTreeSet::from([team_acme.clone(), room.clone()]),
        "acme saw {seen:?}"
    );
    let seen = shards(&rows(ctx, mine.clone(), Some(&uma_t)).await?);
    ensure!(
        seen == BTreeSet::from([user_uma.clone(), room.clone()]),
        "uma saw {seen:?}"
    );
    ensure!(rows(ctx, msgs, Some(&admin_t)).await?.len() == 4);
    let seen = shards(&rows(ctx, mine.clone(), Some(&admin_t)).await?);
    ensure!(seen.len() == 4, "admin saw {seen:?}");

    // The directory, for each of them (other scenarios' shards are in it
    // too: no team or user shard but the caller's own may show).
    let ours = [&team_acme, &team_evil, &user_uma, &room];
    for (who, t, own) in [
        ("anonymous", None, vec![]),
        ("evil", Some(&evil_t), vec![team_evil.clone()]),
        ("acme", Some(&acme_t), vec![team_acme.clone()]),
        ("uma", Some(&uma_t), vec![user_uma.clone()]),
    ] {
        let dir = directory(ctx, t.map(String::as_str)).await?;
        let guarded: Vec<&String> = dir
            .iter()
            .filter(|s| s.starts_with("team:") || s.starts_with("user:"))
            .collect();
        ensure!(
            guarded.iter().all(|s| own.contains(s)) && own.iter().all(|s| dir.contains(s)),
            "{who} was shown {guarded:?}"
        );
        ensure!(dir.contains(&room), "{who} was not shown {room}");
    }
    let dir = directory(ctx, Some(&admin_t)).await?;
    ensure!(
        ours.iter().all(|s| dir.contains(s.as_str())),
        "the admin was shown {dir:?}"
    );

    byte_bound(ctx).await?;
    endless_body(ctx).await?;
    unmigrated(ctx).await
}

/// Three ~400 KiB rows: pages of two and one, each answer within the budget.
async fn byte_bound(ctx: &Ctx) -> Result<()> {
    let shard = unique("big");
    for i in 0..3 {
        let title = format!("{i}{}", "x".repeat(400 * 1024));
        mutate(ctx, &shard, None, vec![card(&format!("b{i}"), &title)]).await?;
    }
    let started = Instant::now();
    let count = json!({"entity": "Card", "shard": shard, "aggregate": {"op": "count"}});
    loop {
        let a = post(&ctx.dev.http("/v1/query"), &count, None).await?;
        if a.body["aggregate"] == json!([{"value": 3}]) {
            break;
        }
        ensure!(
            started.elapsed() < CONVERGE,
            "D1 did not get the big rows: {}",
            a.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut body = json!({"entity": "Card", "shard": shard});
    let mut pages = Vec::new();
    loop {
        let a = post(&ctx.dev.http("/v1/query"), &body, None).await?;
        ensure!(a.status == 200, "{} {}", a.status, a.body);
        ensure!(
            a.bytes <= MAX_RESULT_BYTES,
            "a page of {} bytes, over {MAX_RESULT_BYTES}",
            a.bytes
        );
        pages.push(a.body["rows"].as_array().map_or(0, Vec::len));
        match a.body["next"].as_str() {
            Some(n) => body["after"] = json!(n),
            None => break,
        }
    }
    ensure!(pages == [2, 1], "pages of {pages:?} rows");
    Ok(())
}

/// A chunked body that passes the cap and never ends: answered 413 at
/// once (a reader that waited for the whole body would never answer).
async fn endless_body(ctx: &Ctx) -> Result<()> {
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", ctx.dev.port)).await?;
    let (mut rd, mut wr) = conn.split();
    let head = "POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\n\r\n";
    let writer = async {
        let sent = async {
            wr.write_all(head.as_bytes()).await?;
            let chunk = vec![b' '; 64 * 1024];
            // 1.5 MiB, then nothing more: the body stays open.
            for _ in 0..24 {
                wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                wr.write_all(&chunk).await?;
                wr.write_all(b"\r\n").await?;
            }
            wr.flush().await
        };
        // The server may stop reading once it has answered.
        let _ = sent.await;
        std::future::pending::<Result<String>>().await
    };
    let reader = async {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = rd.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if text.contains("\r\n\r\n") && text.contains("}") {
                break;
            }
        }
        anyhow::Ok(String::from_utf8_lossy(&got).into_owned())
    };
    let answer = within("the answer to an endless body", async {
        tokio::select! {
            w = writer => w,
            r = reader => r,
        }
    })
    .await??;
    ensure!(
        answer.starts_with("HTTP/1.1 413") && answer.contains("TOO_LARGE"),
        "an endless body: {answer:?}"
    );
    Ok(())
}

/// A second wrangler dev whose D1 never had its migrations applied.
async fn unmigrated(ctx: &Ctx) -> Result<()> {
    let dev = ctx
        .wrangler()
        .unmigrated()
        .start(&ctx.dir.join("unmigrated"))
        .await?;
    for (what, a) in [
        (
            "query",
            post(&dev.http("/v1/query"), &json!({"entity": "Card"}), None).await?,
        ),
        ("directory", get(&dev.http("/v1/shards"), None).await?),
    ] {
        let message = a.body["error"]["message"].as_str().unwrap_or_default();
        ensure!(
            a.status == 503 && a.body["error"]["code"] == "D1_NOT_MIGRATED",
            "{what}: {} {}",
            a.status,
            a.body
        );
        ensure!(
            message.contains("wrangler d1 migrations apply DB --local")
                && message.contains("--remote"),
            "{what}: {message}"
        );
        let text = a.body.to_string().to_lowercase();
        ensure!(
            !text.contains("no such table") && !text.contains("sqlite"),
            "{what}: SQLite's text in the answer: {text}"
        );
    }
    drop(dev);
    Ok(())
}
