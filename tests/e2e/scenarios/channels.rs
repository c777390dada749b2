//! Pub/sub channels under wrangler dev (docs/pubsub.md): messages
//! published over HTTP and from an action reach every subscriber's socket
//! in id order; a socket resumes after an id (replay, `ready`, then live);
//! HTTP history; retention by count at once and by age after it passes
//! (and a resume from before it says `gap`); the channel list shows each
//! caller what it may subscribe to; refused publishes and subscriptions
//! (401/403, nothing stored) and bad inputs get typed errors; and a
//! channel's history and ids survive a `kill -9` of wrangler
//! (`after_restart`).

use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{unique, within};
use crate::Ctx;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The channel `run` leaves for `after_restart`, and its last id.
static DURABLE: std::sync::Mutex<Option<(String, i64)>> = std::sync::Mutex::new(None);

struct Api {
    ctx_http: String,
    ctx_ws: String,
    http: reqwest::Client,
}

impl Api {
    fn new(ctx: &Ctx) -> Api {
        Api {
            ctx_http: ctx.dev.http(""),
            ctx_ws: ctx.dev.ws(""),
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with an optional token and JSON body: status and body.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.ctx_http));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = within(path, req.send()).await??;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    async fn publish(
        &self,
        channel: &str,
        token: Option<&str>,
        data: Value,
    ) -> Result<(u16, Value)> {
        let path = format!("/v1/channels/{channel}/publish");
        self.call(
            reqwest::Method::POST,
            &path,
            token,
            Some(&json!({ "data": data })),
        )
        .await
    }

    async fn history(
        &self,
        channel: &str,
        token: Option<&str>,
        after: i64,
    ) -> Result<(u16, Value)> {
        let path = format!("/v1/channels/{channel}/history?after={after}");
        self.call(reqwest::Method::GET, &path, token, None).await
    }

    /// A subscriber's socket (`after`: resume after that id), its token
    /// in the subprotocol as a browser sends it; or the refusal's status.
    async fn subscribe(
        &self,
        channel: &str,
        token: Option<&str>,
        after: Option<i64>,
    ) -> Result<std::result::Result<Socket, u16>> {
        let q = after.map(|a| format!("?after={a}")).unwrap_or_default();
        let mut req =
            format!("{}/v1/channels/{channel}/ws{q}", self.ctx_ws).into_client_request()?;
        let protocols = match token {
            Some(t) => format!("pylon.v1.json, bearer.{t}"),
            None => "pylon.v1.json".into(),
        };
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse()?);
        match within("connect", tokio_tungstenite::connect_async(req)).await? {
            Ok((ws, _)) => Ok(Ok(ws)),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                Ok(Err(resp.status().as_u16()))
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The next frame of `ws`, as JSON.
async fn next(ws: &mut Socket) -> Result<Value> {
    loop {
        match within("a channel frame", ws.next())
            .await?
            .context("socket ended")??
        {
            Message::Text(t) => return Ok(serde_json::from_str(&t)?),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => bail!("unexpected frame {other:?}"),
        }
    }
}

/// The message ids up to and including `ready` (a resumed socket's replay).
async fn until_ready(ws: &mut Socket) -> Result<(Vec<i64>, Value)> {
    let mut ids = Vec::new();
    loop {
        let f = next(ws).await?;
        match f["type"].as_str() {
            Some("message") => ids.push(f["id"].as_i64().context("id")?),
            Some("ready") => return Ok((ids, f)),
            _ => bail!("unexpected frame {f}"),
        }
    }
}

/// The next `n` message ids (and their data) of a live socket.
async fn messages(ws: &mut Socket, n: usize) -> Result<Vec<(i64, Value)>> {
    let mut out = Vec::new();
    while out.len() < n {
        let f = next(ws).await?;
        ensure!(f["type"] == "message", "{f}");
        out.push((f["id"].as_i64().context("id")?, f["data"].clone()));
    }
    Ok(out)
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or("")
}

fn ids_of(history: &Value) -> Vec<i64> {
    history["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["id"].as_i64()).collect())
        .unwrap_or_default()
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let api = Api::new(ctx);
    let me = unique("chan-user");
    let user = super::background::token(&me, false)?;
    let other = super::background::token("chan-other", false)?;
    let admin = super::background::token("chan-admin", true)?;
    let chat = format!("chat:{}", unique("room"));

    // Three subscribers (anonymous: the board's chat:* lets anyone
    // subscribe), each told where the channel is.
    let mut subs = Vec::new();
    for _ in 0..3 {
        let mut ws = api
            .subscribe(&chat, None, None)
            .await?
            .map_err(|s| anyhow::anyhow!("{s}"))?;
        let (ids, ready) = until_ready(&mut ws).await?;
        ensure!(
            ids.is_empty() && ready["lastId"] == 0 && ready["v"] == 1,
            "{ready}"
        );
        subs.push(ws);
    }
    for i in 1..=5 {
        let (s, b) = api.publish(&chat, Some(&user), json!({ "n": i })).await?;
        ensure!(s == 200 && b["id"] == i, "publish {i}: {s} {b}");
    }
    for ws in &mut subs {
        let got = messages(ws, 5).await?;
        let ids: Vec<i64> = got.iter().map(|(id, _)| *id).collect();
        ensure!(ids == [1, 2, 3, 4, 5], "{ids:?}");
        ensure!(got[2].1 == json!({"n": 3}), "{got:?}");
    }

    // Resume after 2: 3, 4, 5 replayed, then ready, then live.
    let mut resumed = api
        .subscribe(&chat, None, Some(2))
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    let (ids, ready) = until_ready(&mut resumed).await?;
    ensure!(
        ids == [3, 4, 5] && ready["lastId"] == 5 && ready["gap"] == false,
        "{ids:?} {ready}"
    );

    // Publish from an action: as its caller, through the channel rules.
    let shard = unique("chan-shard");
    let (s, b) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/shards/{shard}/fn/announce"),
            Some(&user),
            Some(&json!({"room": chat.trim_start_matches("chat:"), "text": "from an action"})),
        )
        .await?;
    ensure!(s == 200 && b["value"]["id"] == 6, "announce: {s} {b}");
    let got = messages(&mut resumed, 1).await?;
    ensure!(
        got[0] == (6, json!({"text": "from an action", "by": me})),
        "{got:?}"
    );
    ensure!(
        messages(&mut subs[0], 1).await?[0].0 == 6,
        "a live subscriber too"
    );
    // An anonymous caller's action may not publish to chat:* (signedIn).
    let (s, b) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/shards/{shard}/fn/announce"),
            None,
            Some(&json!({"room": "x", "text": "no"})),
        )
        .await?;
    ensure!(
        s == 401
            && b["error"]["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("UNAUTHORIZED"),
        "{s} {b}"
    );

    // HTTP history after an id.
    let (s, h) = api.history(&chat, None, 4).await?;
    ensure!(
        s == 200 && ids_of(&h) == [5, 6] && h["lastId"] == 6,
        "{s} {h}"
    );
    ensure!(h["messages"][1]["data"]["text"] == "from an action", "{h}");

    // The list: what each caller may subscribe to.
    let inbox = format!("inbox:{me}");
    let (s, b) = api.publish(&inbox, Some(&admin), json!("for you")).await?;
    ensure!(s == 200 && b["id"] == 1, "{s} {b}");
    let list = |token: Option<String>| {
        let api = &api;
        async move {
            let (s, b) = api
                .call(
                    reqwest::Method::GET,
                    "/v1/channels?limit=1000",
                    token.as_deref(),
                    None,
                )
                .await?;
            ensure!(s == 200, "{s} {b}");
            let names: Vec<String> = b["channels"]
                .as_array()
                .context("channels")?
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_owned))
                .collect();
            anyhow::Ok(names)
        }
    };
    let anyone = list(None).await?;
    ensure!(
        anyone.contains(&chat) && !anyone.contains(&inbox),
        "{anyone:?}"
    );
    ensure!(
        list(Some(user.clone())).await?.contains(&inbox),
        "the owner sees its inbox"
    );
    ensure!(
        !list(Some(other.clone())).await?.contains(&inbox),
        "another user does not"
    );

    // Refusals: nothing stored, typed.
    let (s, b) = api.publish("news", Some(&user), json!("no")).await?;
    ensure!(s == 403 && code(&b) == "FORBIDDEN", "{s} {b}");
    let (s, b) = api.publish(&chat, None, json!("no")).await?;
    ensure!(s == 401 && code(&b) == "UNAUTHORIZED", "{s} {b}");
    let (_, h) = api.history(&chat, None, 0).await?;
    ensure!(h["lastId"] == 6, "a refused publish stored nothing: {h}");
    ensure!(
        api.subscribe(&inbox, Some(&other), None).await?.err() == Some(403),
        "another's inbox"
    );
    ensure!(
        api.subscribe(&inbox, None, None).await?.err() == Some(401),
        "an inbox anonymously"
    );
    let mut mine = api
        .subscribe(&inbox, Some(&user), Some(0))
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    ensure!(
        until_ready(&mut mine).await?.0 == [1],
        "the owner's inbox replays"
    );

    // Bad inputs.
    let (s, b) = api.publish("bad%20name", Some(&user), json!(1)).await?;
    ensure!(s == 400 && code(&b) == "BAD_CHANNEL_NAME", "{s} {b}");
    let (s, b) = api.publish("nochannel", Some(&admin), json!(1)).await?;
    ensure!(s == 404 && code(&b) == "UNKNOWN_CHANNEL", "{s} {b}");
    let big = json!("x".repeat(pylon_workers::channels::MAX_MESSAGE_BYTES));
    let (s, b) = api.publish(&chat, Some(&user), big).await?;
    ensure!(s == 413 && code(&b) == "MESSAGE_TOO_LARGE", "{s} {b}");
    let (s, b) = api
        .call(
            reqwest::Method::POST,
            &format!("/v1/channels/{chat}/publish"),
            Some(&user),
            Some(&json!({"text": 1})),
        )
        .await?;
    ensure!(s == 400 && code(&b) == "BAD_REQUEST", "{s} {b}");
    let (s, b) = api
        .call(
            reqwest::Method::GET,
            &format!("/v1/channels/{chat}/ws"),
            None,
            None,
        )
        .await?;
    ensure!(s == 426, "a plain GET of the socket: {s} {b}");
    ensure!(api.subscribe(&chat, None, None).await.is_ok(), "still fine");
    // A subscriber that keeps sending frames: one error each, then 4400.
    let mut flood = api
        .subscribe(&chat, None, None)
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    until_ready(&mut flood).await?;
    let max = pylon_workers::channels::MAX_REFUSED_FRAMES;
    for _ in 0..max {
        flood.send(Message::Text("publish please".into())).await?;
    }
    let mut errors = 0;
    let close = loop {
        match within("the flood's answers", flood.next()).await? {
            Some(Ok(Message::Text(t))) => {
                let f: Value = serde_json::from_str(&t)?;
                ensure!(f["code"] == "BAD_REQUEST", "{f}");
                errors += 1;
            }
            Some(Ok(Message::Close(c))) => break c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => continue,
            other => bail!("the flood socket ended without a close: {other:?}"),
        }
    };
    ensure!(
        errors == max && close == Some(4400),
        "{errors} errors, close {close:?}"
    );
    let (_, h) = api.history(&chat, None, 0).await?;
    ensure!(h["lastId"] == 6, "no bad input stored anything: {h}");

    // Retention: ticks:* keeps 3 messages for 2 s.
    let ticks = format!("ticks:{}", unique("t"));
    for i in 1..=5 {
        api.publish(&ticks, Some(&user), json!(i)).await?;
    }
    let (_, h) = api.history(&ticks, Some(&user), 0).await?;
    ensure!(ids_of(&h) == [3, 4, 5], "by count: {h}");
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let (_, h) = api.history(&ticks, Some(&user), 0).await?;
    ensure!(ids_of(&h).is_empty() && h["lastId"] == 5, "by age: {h}");
    let mut late = api
        .subscribe(&ticks, Some(&user), Some(1))
        .await?
        .map_err(|s| anyhow::anyhow!("{s}"))?;
    let (ids, ready) = until_ready(&mut late).await?;
    ensure!(
        ids.is_empty() && ready["gap"] == true && ready["lastId"] == 5,
        "{ready}"
    );

    *DURABLE.lock().unwrap() = Some((chat, 6));
    Ok(())
}

/// After `restart::run`'s `kill -9`: the history and ids are as they
/// were. Through the Rust client (`client::background::Channels`).
pub async fn after_restart(ctx: &mut Ctx) -> Result<()> {
    use pylon_workers::client::background::{ChannelEvent, Channels};
    let Some((chat, last)) = DURABLE.lock().unwrap().take() else {
        bail!("channels::run did not run");
    };
    let user = super::background::token("chan-after", false)?;
    let ch = Channels::new(ctx.dev.http("")).token(user);
    let h = within("history", ch.history(&chat, Some(0), None)).await??;
    let ids: Vec<i64> = h.messages.iter().map(|m| m.id).collect();
    ensure!(
        ids == (1..=last).collect::<Vec<_>>() && h.last_id == last,
        "{h:?}"
    );
    let mut ws = within("subscribe", ch.subscribe(&chat, Some(last - 2))).await??;
    let mut replayed = Vec::new();
    loop {
        match within("a frame", ws.next()).await??.context("closed")? {
            ChannelEvent::Message { id, .. } => replayed.push(id),
            ChannelEvent::Ready { last_id, gap } => {
                ensure!(last_id == last && !gap, "{last_id} {gap}");
                break;
            }
            other => bail!("{other:?}"),
        }
    }
    ensure!(replayed == [last - 1, last], "{replayed:?}");
    let p = within("publish", ch.publish(&chat, json!("after"))).await??;
    ensure!(p.id == last + 1, "ids go on: {p:?}");
    let next = within("live", ws.next()).await??;
    ensure!(
        matches!(next, Some(ChannelEvent::Message { id, .. }) if id == last + 1),
        "live after the restart: {next:?}"
    );
    let refused = ch.publish("news", json!(1)).await.unwrap_err();
    ensure!(refused.code() == "FORBIDDEN", "{refused:?}");
    let listed = within("list", ch.list(None, Some(1000))).await??;
    ensure!(listed.channels.iter().any(|c| c.name == chat), "{listed:?}");
    ws.close().await;
    Ok(())
}
