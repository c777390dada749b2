//! Token expiry and session revocation reach open sockets (docs/auth.md,
//! "Open sockets"): past its token's end a socket's messages are refused
//! `TOKEN_EXPIRED` and its live query gets no diffs, across an eviction
//! too, until a `hello` with a fresh token renews it and the missed
//! changes arrive; a socket opened with a session that is then logged out
//! is refused `SESSION_REVOKED` within the revocation cache's interval.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::auth::jwt;
use pylon_workers::client::{apply_rows, check_seq, ClientConfig, RawConnection, Received};
use pylon_workers::manifest::Manifest;
use pylon_workers::protocol::{ErrorCode, ErrorMsg, ServerMsg};
use pylon_workers::value::Row;
use serde_json::{json, Value};

use super::auth::dev_secret;
use super::hibernation::IDLE_FOR_EVICTION;
use crate::support::{card, get_json, project_root, unique, within};
use crate::Ctx;

/// Idle periods to wait at most for one eviction.
const EVICTION_TRIES: usize = 4;
/// How long the shard may take to notice a revocation: the revocation
/// cache's interval (`PYLON_REVOCATION_CACHE_SECS`, 10 s by default, not
/// set by the suite), plus slack for the check's round trip.
const REVOCATION_DELAY: Duration = Duration::from_secs(10 + 5);

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The clock skew the example manifest allows tokens (its
/// `auth.clockSkewSeconds`, else the default).
fn example_skew() -> Result<i64> {
    let text = std::fs::read_to_string(project_root().join("examples/board/schema.json"))?;
    let m = Manifest::from_json_str(&text).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(m.auth().validation.clock_skew_secs as i64)
}

/// A socket and its copy of one live query over `Card`, kept the way
/// docs/protocol.md says (diffs only from the seq held).
struct Watcher {
    raw: RawConnection,
    rows: Vec<Row>,
    seq: Option<u64>,
    pings: u64,
    /// `err`s that answer nothing (pushed notices).
    notices: Vec<ErrorMsg>,
}

impl Watcher {
    async fn open(port: u16, shard: &str, token: &str) -> Result<Watcher> {
        let config = ClientConfig::new(format!("ws://127.0.0.1:{port}"), shard).token(token);
        let mut raw = within("connect", RawConnection::connect(&config)).await??;
        within("welcome", raw.recv_welcome()).await??;
        let mut w = Watcher {
            raw,
            rows: Vec::new(),
            seq: None,
            pings: 0,
            notices: Vec::new(),
        };
        w.send(json!({"type": "sub", "id": "s", "entity": "Card", "order": ["position"]}))
            .await?;
        let got = w
            .until("the snap", |m| matches!(m, ServerMsg::Snap(_)))
            .await?;
        ensure!(w.seq.is_some(), "no snap: {got:?}");
        Ok(w)
    }

    async fn send(&mut self, msg: Value) -> Result<()> {
        Ok(self.raw.send_text(msg.to_string()).await?)
    }

    /// Takes one message into the held rows (a diff from another seq fails).
    fn take(&mut self, m: &ServerMsg) -> Result<()> {
        match m {
            ServerMsg::Snap(s) if s.id == "s" => {
                self.rows = s.rows.clone();
                self.seq = Some(s.seq);
            }
            ServerMsg::Reset(r) if r.id == "s" => self.seq = None,
            ServerMsg::Err(e) if e.op.is_none() && e.sub.is_none() => self.notices.push(e.clone()),
            ServerMsg::Diff(d) if d.id == "s" => {
                check_seq(self.seq, d).map_err(|e| anyhow::anyhow!("diff {d:?}: {e}"))?;
                apply_rows(&mut self.rows, d).map_err(|e| anyhow::anyhow!("diff {d:?}: {e}"))?;
                self.seq = Some(d.seq);
            }
            _ => {}
        }
        Ok(())
    }

    /// Messages up to and including the first that `stop` accepts.
    async fn until(
        &mut self,
        what: &str,
        mut stop: impl FnMut(&ServerMsg) -> bool,
    ) -> Result<Vec<ServerMsg>> {
        let mut got = Vec::new();
        loop {
            let m = match within(what, self.raw.recv()).await?? {
                Received::Msg(m) => m,
                other => bail!("{what}: {other:?}"),
            };
            self.take(&m)?;
            let done = stop(&m);
            got.push(m);
            if done {
                return Ok(got);
            }
        }
    }

    /// Everything the server sent this socket before now: messages to one
    /// socket keep their order, so a ping's pong fences them.
    async fn drain(&mut self) -> Result<Vec<ServerMsg>> {
        self.pings += 1;
        let t = self.pings;
        self.send(json!({"type": "ping", "t": t})).await?;
        let mut got = self
            .until(
                "the pong",
                |m| matches!(m, ServerMsg::Pong(p) if p.t == Some(t)),
            )
            .await?;
        got.pop();
        Ok(got)
    }

    /// The `ack` of `op`, or its `err`.
    async fn write(&mut self, op: &str, id: &str, position: f64) -> Result<Result<(), ErrorMsg>> {
        self.send(
            json!({"type": "mut", "op": op, "ops": [{"type": "insert", "entity": "Card",
                         "row": card(id, id, position)}]}),
        )
        .await?;
        let got = self
            .until("an answer", |m| match m {
                ServerMsg::Ack(a) => a.op == op,
                ServerMsg::Err(e) => e.op.as_deref() == Some(op),
                _ => false,
            })
            .await?;
        Ok(match got.last() {
            Some(ServerMsg::Err(e)) => Err(e.clone()),
            _ => Ok(()),
        })
    }
}

fn is_data(m: &ServerMsg) -> bool {
    matches!(
        m,
        ServerMsg::Diff(_) | ServerMsg::Snap(_) | ServerMsg::Reset(_)
    )
}

/// The shard's Cards as a fresh query sees them.
async fn truth(ctx: &Env, shard: &str, token: &str) -> Result<Vec<Row>> {
    let resp = reqwest::Client::new()
        .post(ctx.http(&format!("/v1/shards/{shard}/query")))
        .bearer_auth(token)
        .json(&json!({"entity": "Card", "order": ["position"]}))
        .send()
        .await?;
    let body: Value = resp.json().await?;
    Ok(serde_json::from_value(body["rows"].clone()).context("rows")?)
}

async fn wakes(ctx: &Env, shard: &str) -> Result<u64> {
    let stats = get_json(&ctx.http(&format!("/v1/shards/{shard}/stats"))).await?;
    Ok(stats["wakes"].as_u64().unwrap_or(0))
}

/// What the scenario needs of the suite: it runs beside the others (its
/// waits are for time to pass, on shards of its own), from `start` to
/// `finish`.
struct Env {
    port: u16,
    base: String,
    providers: crate::support::providers::Providers,
}

impl Env {
    fn http(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub async fn start(ctx: &mut Ctx) -> Result<()> {
    let env = Env {
        port: ctx.dev.port,
        base: ctx.dev.http(""),
        providers: ctx.providers.clone(),
    };
    let handle = tokio::spawn(async move {
        expiry(&env).await?;
        revocation(&env).await
    });
    ctx.background.push(("expiry", handle));
    Ok(())
}

pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("expiry").await
}

/// An HS256 token the router takes for about 4 more seconds: its `exp` is
/// set so that `exp` + the allowed skew is 4 s from now (with the example's
/// 60 s skew, `exp` is 56 s ago). Then the wait for that end, which is the
/// point of the test.
async fn expiry(ctx: &Env) -> Result<()> {
    let secret = dev_secret()?;
    let skew = example_skew()?;
    let port = ctx.port;
    let shard = unique("expiry");
    let ann = unique("ann");
    let token = |exp: i64| {
        jwt::sign_hs256(
            &json!({"sub": ann, "aud": "pylon-dev", "exp": exp}),
            secret.as_bytes(),
        )
    };
    let last_second = now_secs() + 4;
    let mut watcher = Watcher::open(port, &shard, &token(last_second - skew)).await?;
    let writer_token = jwt::sign_hs256(
        &json!({"sub": unique("bob"), "aud": "pylon-dev", "exp": now_secs() + 600}),
        secret.as_bytes(),
    );
    let mut writer = Watcher::open(port, &shard, &writer_token).await?;

    // Served while the token holds.
    ensure!(writer.write("w1", "c1", 1.0).await?.is_ok());
    watcher
        .until("the first diff", |m| matches!(m, ServerMsg::Diff(_)))
        .await?;

    // The wait is the point: until the router would refuse the token.
    let end = UNIX_EPOCH + Duration::from_secs((last_second + 1) as u64);
    if let Ok(left) = end.duration_since(SystemTime::now()) {
        tokio::time::sleep(left + Duration::from_millis(200)).await;
    }

    // A write from another connection: no diff for the expired socket,
    // one pushed notice instead.
    ensure!(writer.write("w2", "c2", 2.0).await?.is_ok());
    let seen = watcher.drain().await?;
    ensure!(
        !seen.iter().any(is_data),
        "a diff after the expiry: {seen:?}"
    );
    let notices = &watcher.notices;
    ensure!(
        notices.len() == 1
            && notices[0].code == ErrorCode::Unauthorized
            && notices[0].message.starts_with("TOKEN_EXPIRED: ")
            && notices[0].op.is_none(),
        "one notice: {seen:?}"
    );
    // Its next message is refused; nothing more is pushed.
    match watcher.write("a1", "mine", 0.5).await? {
        Err(e) if e.code == ErrorCode::Unauthorized && e.message.starts_with("TOKEN_EXPIRED") => {}
        other => bail!("a write on an expired socket: {other:?}"),
    }
    ensure!(writer.write("w3", "c3", 3.0).await?.is_ok());
    let seen = watcher.drain().await?;
    ensure!(
        seen.is_empty() && watcher.notices.len() == 1,
        "pushed again: {seen:?}"
    );

    // Ended survives an eviction: the attachment carries it.
    let w0 = wakes(ctx, &shard).await?;
    let mut evicted = false;
    for _ in 0..EVICTION_TRIES {
        tokio::time::sleep(IDLE_FOR_EVICTION).await;
        if wakes(ctx, &shard).await? > w0 {
            evicted = true;
            break;
        }
    }
    ensure!(
        evicted,
        "the object was not evicted in {EVICTION_TRIES} idle periods"
    );
    ensure!(writer.write("w4", "c4", 0.0).await?.is_ok());
    let seen = watcher.drain().await?;
    ensure!(seen.is_empty(), "after the wake: {seen:?}");
    match watcher.write("a2", "mine", 0.5).await? {
        Err(e) if e.message.starts_with("TOKEN_EXPIRED") => {}
        other => bail!("a write on an expired socket after the wake: {other:?}"),
    }

    // Renewal: hello with a fresh token for the same caller. The missed
    // changes arrive and the query is exact.
    let fresh = token(now_secs() + 600);
    watcher
        .send(json!({"type": "hello", "client": "e2e/1", "token": fresh}))
        .await?;
    let got = watcher
        .until("the welcome", |m| {
            matches!(m, ServerMsg::Welcome(_) | ServerMsg::Err(_))
        })
        .await?;
    ensure!(
        matches!(got.last(), Some(ServerMsg::Welcome(_))),
        "renewal: {got:?}"
    );
    watcher.drain().await?;
    ensure!(
        watcher.rows == truth(ctx, &shard, &writer_token).await?,
        "after the renewal: {:?}",
        watcher.rows
    );
    ensure!(writer.write("w5", "c5", 5.0).await?.is_ok());
    watcher
        .until("a diff after the renewal", |m| {
            matches!(m, ServerMsg::Diff(_))
        })
        .await?;
    ensure!(watcher.rows == truth(ctx, &shard, &writer_token).await?);
    ensure!(
        watcher.write("a3", "mine", 0.5).await?.is_ok(),
        "own write after renewal"
    );
    Ok(())
}

/// Signs in with an emailed code, opens a socket on the user's shard with
/// the session token, logs out: within the revocation interval the socket
/// is refused `SESSION_REVOKED` and gets no diffs.
async fn revocation(ctx: &Env) -> Result<()> {
    let base = ctx.http("");
    let http = reqwest::Client::new();
    let address = format!("{}@example.com", unique("rev"));
    let start = http
        .post(format!("{base}/v1/auth/email/start"))
        .json(&json!({"email": address}))
        .send()
        .await?;
    ensure!(start.status() == 202, "email start: {}", start.status());
    let mail = ctx.providers.last_mail_to(&address).context("no mail")?;
    let code = mail["text"]
        .as_str()
        .unwrap_or("")
        .split("code: ")
        .nth(1)
        .context("no code in the mail")?[..6]
        .to_owned();
    let signed: Value = http
        .post(format!("{base}/v1/auth/email/verify"))
        .json(&json!({"email": address, "code": code, "refresh_in_body": true}))
        .send()
        .await?
        .json()
        .await?;
    let access = signed["access_token"]
        .as_str()
        .context("access_token")?
        .to_owned();
    let uid = signed["user"]["id"].as_str().context("user id")?.to_owned();
    let shard = format!("user:{uid}");
    let mut watcher = Watcher::open(ctx.port, &shard, &access).await?;
    // Another writer on the same shard: the user, with an outside token.
    let secret = dev_secret()?;
    let outside = jwt::sign_hs256(
        &json!({"sub": uid, "aud": "pylon-dev", "exp": now_secs() + 600}),
        secret.as_bytes(),
    );
    let mut writer = Watcher::open(ctx.port, &shard, &outside).await?;

    let out = http
        .post(format!("{base}/v1/auth/logout"))
        .bearer_auth(&access)
        .json(&json!({}))
        .send()
        .await?;
    ensure!(out.status() == 200, "logout: {}", out.status());
    let logged_out = Instant::now();

    // The socket's messages, one a second, until one is refused.
    let mut n = 0;
    let refused = loop {
        ensure!(
            logged_out.elapsed() < REVOCATION_DELAY,
            "still served {REVOCATION_DELAY:?} after the logout"
        );
        n += 1;
        let op = format!("r{n}");
        let answer = watcher.write(&op, &op, f64::from(n)).await?;
        watcher.drain().await?;
        if let Some(e) = watcher.notices.first() {
            break e.clone();
        }
        if let Err(e) = answer {
            break e;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    ensure!(
        refused.code == ErrorCode::Unauthorized && refused.message.starts_with("SESSION_REVOKED: "),
        "{refused:?}"
    );
    match watcher.write("after", "after", 99.0).await? {
        Err(e) if e.message.starts_with("SESSION_REVOKED") => {}
        other => bail!("a write after the revocation was noticed: {other:?}"),
    }
    ensure!(writer.write("w1", "w1", 0.0).await?.is_ok());
    let seen = watcher.drain().await?;
    ensure!(
        !seen.iter().any(is_data),
        "a diff after the revocation: {seen:?}"
    );

    // The same user with a valid token renews it; the query catches up.
    watcher
        .send(json!({"type": "hello", "token": outside}))
        .await?;
    let got = watcher
        .until("the welcome", |m| {
            matches!(m, ServerMsg::Welcome(_) | ServerMsg::Err(_))
        })
        .await?;
    ensure!(
        matches!(got.last(), Some(ServerMsg::Welcome(_))),
        "renewal: {got:?}"
    );
    watcher.drain().await?;
    ensure!(watcher.rows == truth(ctx, &shard, &outside).await?);
    Ok(())
}
