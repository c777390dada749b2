//! The rooms API under wrangler dev (docs/rooms.md): sockets of a room see
//! an HTTP member join, update and leave, and an HTTP broadcast; the
//! room's size and members agree with what the sockets see; `GET
//! /v1/rooms` lists it (written behind to D1); bad input and forbidden
//! callers get typed errors; an action's `ctx.rooms` join, broadcast,
//! setPresence, list and leave (the board's `checkIn` and `checkOut`)
//! reach the sockets and the list too. Beside the other
//! scenarios, HTTP members outlive an eviction and a member with a TTL
//! leaves on the alarm (`finish`); a member survives a `kill -9` of
//! wrangler (`after_restart`).

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use pylon_workers::client::{Client, Event};
use pylon_workers::protocol::Encoding;
use serde_json::{json, Value};

use super::background::token;
use super::hibernation::IDLE_FOR_EVICTION;
use crate::support::{client, unique, within};
use crate::Ctx;

/// The room and member `run` leaves for `after_restart`.
static DURABLE: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);

/// One request with an optional bearer token: status and JSON body.
async fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Result<(u16, Value)> {
    let http = reqwest::Client::new();
    let mut req = match method {
        "GET" => http.get(url),
        _ => http.post(url),
    };
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = within(url, req.send()).await??;
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn code(b: &Value) -> &str {
    b["error"]["code"].as_str().unwrap_or("")
}

/// Polls `check` every 100 ms until it holds, for at most 15 s.
async fn until<F: FnMut() -> bool>(what: &str, mut check: F) -> Result<()> {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

/// The member `conn`'s presence as socket `c` sees it.
fn seen(c: &Client, conn: &str) -> Option<serde_json::Value> {
    c.presence_members()
        .get(conn)
        .map(|v| serde_json::to_value(v).unwrap_or(Value::Null))
}

/// The next broadcast socket `events` gets: its topic, data and sender.
async fn next_bcast(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
) -> Result<(String, Value, String)> {
    within("a bcast", async {
        loop {
            if let Ok(Event::Bcast(b)) = events.recv().await {
                return (
                    b.topic,
                    serde_json::to_value(&b.data).unwrap_or(Value::Null),
                    b.from,
                );
            }
        }
    })
    .await
}

pub async fn run(ctx: &mut Ctx) -> Result<()> {
    let room = unique("room");
    let port = ctx.dev.port;
    let url = |op: &str| ctx.dev.http(&format!("/v1/rooms/{room}{op}"));
    let alice_id = unique("alice");
    let alice = token(&alice_id, false)?;
    let admin = token("rooms-admin", true)?;
    let a = client(port, &room, Encoding::Json).await?;
    let b = client(port, &room, Encoding::Postcard).await?;
    let mut events = a.events();
    let member = format!("member:{alice_id}");

    // Join, update, seen by both sockets.
    let (s, body) = call(
        "POST",
        &url("/join"),
        Some(&alice),
        Some(json!({"member": alice_id, "presence": {"at": "door"}})),
    )
    .await?;
    ensure!(s == 200 && body["member"] == alice_id, "join: {s} {body}");
    for c in [&a, &b] {
        until("the member's join", || {
            seen(c, &member) == Some(json!({"at": "door"}))
        })
        .await?;
    }
    let (s, body) = call(
        "POST",
        &url("/presence"),
        Some(&alice),
        Some(json!({"member": alice_id, "presence": {"at": "desk"}})),
    )
    .await?;
    ensure!(s == 200, "presence: {s} {body}");
    until("the member's update", || {
        seen(&b, &member) == Some(json!({"at": "desk"}))
    })
    .await?;

    // Size and members agree with the sockets' view.
    b.presence(pylon_workers::value::Value::from(json!({"me": "b"})))?;
    until("b's own presence", || seen(&a, &b.conn_id()).is_some()).await?;
    let (s, info) = call("GET", &url(""), None, None).await?;
    ensure!(
        s == 200 && info["size"] == 2 && info["sockets"] == 2,
        "{s} {info}"
    );
    let mut conns: Vec<String> = info["members"]
        .as_array()
        .context("members")?
        .iter()
        .filter_map(|m| m["conn"].as_str().map(str::to_owned))
        .collect();
    conns.sort();
    let mut view: Vec<String> = a.presence_members().into_keys().collect();
    view.sort();
    ensure!(conns == view, "GET has {conns:?}, a socket sees {view:?}");

    // A broadcast from a server (admin) reaches the sockets.
    let (s, body) = call(
        "POST",
        &url("/broadcast"),
        Some(&admin),
        Some(json!({"topic": "news", "data": {"n": 1}})),
    )
    .await?;
    ensure!(s == 200, "broadcast: {s} {body}");
    let got = next_bcast(&mut events).await?;
    ensure!(
        got == ("news".into(), json!({"n": 1}), "server".into()),
        "{got:?}"
    );

    // The room list has it with both members (written behind to D1).
    let list = ctx.dev.http(&format!(
        "/v1/rooms?limit=1000&after={}",
        &room[..room.len() - 1]
    ));
    let count = |page: &Value| {
        page["rooms"]
            .as_array()
            .and_then(|r| r.iter().find(|x| x["room"] == room.as_str()))
            .map(|x| x["members"].clone())
    };
    let mut listed = Value::Null;
    for _ in 0..50 {
        let (s, page) = call("GET", &list, Some(&alice), None).await?;
        ensure!(s == 200, "list: {s} {page}");
        if count(&page) == Some(json!(2)) {
            listed = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        !listed.is_null(),
        "the room never showed on the list with 2 members"
    );

    // Typed refusals; nothing they asked for happened.
    let bob = token(&unique("bob"), false)?;
    let cases = [
        (
            "/join",
            Some(&bob),
            json!({"member": alice_id}),
            403,
            "FORBIDDEN",
        ),
        (
            "/leave",
            Some(&bob),
            json!({"member": alice_id}),
            403,
            "FORBIDDEN",
        ),
        ("/join", None, json!({"member": "x"}), 401, "UNAUTHORIZED"),
        (
            "/join",
            Some(&alice),
            json!({"member": "a b"}),
            400,
            "BAD_MEMBER",
        ),
        (
            "/join",
            Some(&alice),
            json!({"member": alice_id, "ttlMs": 0}),
            400,
            "BAD_TTL",
        ),
        (
            "/join",
            Some(&alice),
            json!({"member": alice_id, "presence": "x".repeat(20_000)}),
            413,
            "PRESENCE_TOO_LARGE",
        ),
        (
            "/presence",
            Some(&bob),
            json!({"member": "nobody", "presence": 1}),
            403,
            "FORBIDDEN",
        ),
        (
            "/presence",
            Some(&admin),
            json!({"member": "nobody", "presence": 1}),
            404,
            "MEMBER_NOT_FOUND",
        ),
        (
            "/broadcast",
            Some(&alice),
            json!({"data": 1}),
            400,
            "BAD_TOPIC",
        ),
        ("/join", Some(&alice), json!([1]), 400, "BAD_MESSAGE"),
    ];
    for (op, who, body, status, want) in cases {
        let (s, got) = call(
            "POST",
            &url(op),
            who.map(String::as_str),
            Some(body.clone()),
        )
        .await?;
        ensure!(s == status && code(&got) == want, "{op} {body}: {s} {got}");
    }
    let (s, got) = call(
        "POST",
        &ctx.dev.http("/v1/rooms/a%20b/join"),
        Some(&alice),
        Some(json!({"member": alice_id})),
    )
    .await?;
    ensure!(s == 400 && code(&got) == "BAD_SHARD_NAME", "{s} {got}");
    // The shard rules: another user's room is not alice's to enter.
    let (s, got) = call(
        "POST",
        &ctx.dev.http("/v1/rooms/user:someone-else/join"),
        Some(&alice),
        Some(json!({"member": alice_id})),
    )
    .await?;
    ensure!(s == 403, "another user's room: {s} {got}");
    let (s, got) = call(
        "GET",
        &ctx.dev.http("/v1/rooms/user:someone-else"),
        None,
        None,
    )
    .await?;
    ensure!(s == 401, "anonymous in a user's room: {s} {got}");
    ensure!(
        seen(&a, &member) == Some(json!({"at": "desk"})),
        "a refusal changed the member"
    );

    // Leave: the sockets see it; the list follows.
    let (s, body) = call(
        "POST",
        &url("/leave"),
        Some(&alice),
        Some(json!({"member": alice_id})),
    )
    .await?;
    ensure!(s == 200 && body["left"] == true, "leave: {s} {body}");
    for c in [&a, &b] {
        until("the member's leave", || seen(c, &member).is_none()).await?;
    }
    let mut one = false;
    for _ in 0..50 {
        let (_, page) = call("GET", &list, Some(&alice), None).await?;
        if count(&page) == Some(json!(1)) {
            one = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(one, "the list did not follow the leave");

    // An action's ctx.rooms (the board's checkIn, as alice): its join and
    // broadcast reach the room's sockets like the routes' do; refusals
    // keep the rooms API's code.
    let check_in = ctx.dev.http(&format!("/v1/shards/{room}/fn/checkIn"));
    let (s, body) = call(
        "POST",
        &check_in,
        Some(&alice),
        Some(json!({"room": room, "status": "in"})),
    )
    .await?;
    ensure!(
        s == 200 && body["value"]["size"] == 2,
        "checkIn: {s} {body}"
    );
    for c in [&a, &b] {
        until("the action's join", || {
            seen(c, &member) == Some(json!({"status": "in"}))
        })
        .await?;
    }
    let got = next_bcast(&mut events).await?;
    ensure!(
        got == (
            "checkIn".into(),
            json!({"member": alice_id, "status": "in"}),
            member.clone()
        ),
        "the action's broadcast: {got:?}"
    );
    for (into, status, want, api) in [
        ("user:someone-else", 403, "FORBIDDEN", "FORBIDDEN:"),
        ("a b", 400, "BAD_ARGS", "BAD_SHARD_NAME:"),
    ] {
        let (s, got) = call(
            "POST",
            &check_in,
            Some(&alice),
            Some(json!({"room": into, "status": "in"})),
        )
        .await?;
        let message = got["error"]["message"].as_str().unwrap_or("");
        ensure!(
            s == status && code(&got) == want && message.starts_with(api),
            "checkIn into {into:?}: {s} {got}"
        );
    }
    // Its setPresence, list and leave (the board's checkOut, as alice):
    // the sockets see the new presence, the list shows the room, the
    // leave takes her out, and a presence for a member no longer in the
    // room is refused with the rooms API's code.
    let check_out = ctx.dev.http(&format!("/v1/shards/{room}/fn/checkOut"));
    let out = |status: &str, leave: bool| json!({"room": room, "status": status, "leave": leave});
    let mut listed = false;
    for _ in 0..50 {
        let (s, body) = call("POST", &check_out, Some(&alice), Some(out("away", false))).await?;
        ensure!(s == 200, "checkOut: {s} {body}");
        if body["value"]["listed"] == true {
            listed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(listed, "checkOut: the room list never showed {room}");
    for c in [&a, &b] {
        until("the action's presence", || {
            seen(c, &member) == Some(json!({"status": "away"}))
        })
        .await?;
    }
    let (s, body) = call("POST", &check_out, Some(&alice), Some(out("", true))).await?;
    ensure!(
        s == 200 && body["value"]["left"] == true,
        "checkOut leaving: {s} {body}"
    );
    until("the leave after checkOut", || seen(&a, &member).is_none()).await?;
    let (s, got) = call("POST", &check_out, Some(&alice), Some(out("away", false))).await?;
    let message = got["error"]["message"].as_str().unwrap_or("");
    ensure!(
        s != 200 && message.starts_with("MEMBER_NOT_FOUND"),
        "checkOut after leaving: {s} {got}"
    );

    // A member for after the restart.
    let (s, body) = call(
        "POST",
        &url("/join"),
        Some(&admin),
        Some(json!({"member": "keeper", "presence": {"k": 1}})),
    )
    .await?;
    ensure!(s == 200, "{s} {body}");
    *DURABLE.lock().unwrap() = Some((room.clone(), "member:keeper".into()));

    // Eviction beside the other scenarios (it waits for idle time).
    let base = ctx.dev.http("");
    let handle = tokio::spawn(async move { evicted(port, &base).await });
    ctx.background.push(("rooms", handle));
    Ok(())
}

/// In a room with no sockets: a member without a TTL and one with 4 s;
/// once the object was evicted (`wakes` rose), the first is still there
/// and the second left on the alarm; a new socket sees the first.
async fn evicted(port: u16, base: &str) -> Result<()> {
    let room = unique("room-nap");
    let admin = token("rooms-admin", true)?;
    let url = |op: &str| format!("{base}/v1/rooms/{room}{op}");
    for (m, ttl) in [("stays", Value::Null), ("brief", json!(4000))] {
        let (s, b) = call(
            "POST",
            &url("/join"),
            Some(&admin),
            Some(json!({"member": m, "presence": {"m": m}, "ttlMs": ttl})),
        )
        .await?;
        ensure!(s == 200, "{m}: {s} {b}");
    }
    let stats = format!("{base}/v1/shards/{room}/stats");
    let wakes = |v: &Value| v["wakes"].as_u64().unwrap_or(0);
    let (_, before) = call("GET", &stats, None, None).await?;
    let mut woke = false;
    for _ in 0..4 {
        tokio::time::sleep(IDLE_FOR_EVICTION).await;
        let (_, now) = call("GET", &stats, None, None).await?;
        if wakes(&now) > wakes(&before) {
            woke = true;
            break;
        }
    }
    ensure!(woke, "the room was never evicted");
    let (s, info) = call("GET", &url(""), None, None).await?;
    let conns: Vec<&str> = info["members"]
        .as_array()
        .map(|m| m.iter().filter_map(|x| x["conn"].as_str()).collect())
        .unwrap_or_default();
    ensure!(
        s == 200 && conns == ["member:stays"],
        "after the eviction: {s} {info}"
    );
    let c = client(port, &room, Encoding::Json).await?;
    until("the member in presence_state", || {
        seen(&c, "member:stays") == Some(json!({"m": "stays"}))
    })
    .await?;
    Ok(())
}

/// Joins the eviction check `run` started.
pub async fn finish(ctx: &mut Ctx) -> Result<()> {
    ctx.join("rooms").await
}

/// After `restart::run`'s `kill -9` of wrangler: the member is still in
/// the room, and a socket sees it.
pub async fn after_restart(ctx: &mut Ctx) -> Result<()> {
    let Some((room, member)) = DURABLE.lock().unwrap().take() else {
        bail!("rooms::run did not run");
    };
    let (s, info) = call(
        "GET",
        &ctx.dev.http(&format!("/v1/rooms/{room}")),
        None,
        None,
    )
    .await?;
    let has = info["members"].as_array().is_some_and(|m| {
        m.iter()
            .any(|x| x["conn"] == member.as_str() && x["state"] == json!({"k": 1}))
    });
    ensure!(s == 200 && has, "after the restart: {s} {info}");
    let c = client(ctx.dev.port, &room, Encoding::Json).await?;
    until("the member after the restart", || {
        seen(&c, &member).is_some()
    })
    .await?;
    Ok(())
}
