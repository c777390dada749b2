//! The app's own object kinds (docs/apps.md), simulation shards and
//! matchmaking queues (docs/sims.md): one route, `/v1/objects/…`, also
//! reached as `/v1/sims/…` and `/v1/match/…`. What a kind answers is its
//! own, so bodies and answers are described generically, except the
//! runtime's simulation and matchmaking kinds'. Names follow the shard
//! name rules, shard access rules included.

use super::access::Access;
use super::operation::{Answer, Body, Fail, OpSpec, Tag};

const FAILS: &[Fail] = &[
    Fail::BadRequest,
    Fail::Forbidden,
    Fail::NotFound,
    Fail::Unavailable,
];

const UPGRADE: &[Answer] = &[Answer::Response(101, "Upgrade")];
const ANY_JSON: &[Answer] = &[Answer::Json(200, "Json")];
const OBJECT_REQUEST: &str = "Handed to the kind's `on_request` with the rest of the path, the \
     body (within the kind's `max_body_bytes`) and the verified caller; what it answers is the \
     kind's own.";
const SOCKET: &str = "A WebSocket upgrade becomes a hibernatable socket of the object \
     (the kind's `accept`).";

pub const OBJECTS: &[OpSpec<'static>] = &[
    OpSpec::get(
        "/v1/objects/{kind}/{name}",
        "getObject",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A request to an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .ok(ANY_JSON)
    .fails(FAILS),
    OpSpec::post(
        "/v1/objects/{kind}/{name}",
        "postObject",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A request with a body to an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .body(Body::Optional("Json"))
    .ok(ANY_JSON)
    .fails(FAILS),
    OpSpec::get(
        "/v1/objects/{kind}/{name}/stats",
        "objectStats",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("The host's figures of the object and the kind's")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(FAILS),
    OpSpec::get(
        "/v1/objects/{kind}/{name}/ws",
        "objectSocket",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("Open a WebSocket to the object")
    .detail(SOCKET)
    .ok(UPGRADE)
    .fails(FAILS),
    OpSpec::get(
        "/v1/objects/{kind}/{name}/{path}",
        "getObjectPath",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A request to a path of an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .ok(ANY_JSON)
    .fails(FAILS),
    OpSpec::post(
        "/v1/objects/{kind}/{name}/{path}",
        "postObjectPath",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A request with a body to a path of an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .body(Body::Optional("Json"))
    .ok(ANY_JSON)
    .fails(FAILS),
    OpSpec::new(
        "put",
        "/v1/objects/{kind}/{name}/{path}",
        "putObjectPath",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A PUT to a path of an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .body(Body::Optional("Json"))
    .ok(ANY_JSON)
    .fails(FAILS),
    OpSpec::new(
        "delete",
        "/v1/objects/{kind}/{name}/{path}",
        "deleteObjectPath",
        Tag::Objects,
        Access::ShardRules,
    )
    .summary("A DELETE to a path of an object of the app's own kind")
    .detail(OBJECT_REQUEST)
    .ok(ANY_JSON)
    .fails(FAILS),
];

pub const SIMS: &[OpSpec<'static>] = &[
    OpSpec::get(
        "/v1/sims/{kind}/{name}",
        "simStats",
        Tag::Sims,
        Access::ShardRules,
    )
    .summary("A simulation shard's stats and its snapshot")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(FAILS),
    OpSpec::post(
        "/v1/sims/{kind}/{name}",
        "simInput",
        Tag::Sims,
        Access::ShardRules,
    )
    .summary("One input to a simulation shard; the body is the input's JSON")
    .query(&["seq", "subscriber"])
    .body(Body::Required("Json"))
    .ok(&[Answer::Json(200, "SimInputAccepted")])
    .fails(FAILS),
    OpSpec::get(
        "/v1/sims/{kind}/{name}/replay",
        "simReplay",
        Tag::Sims,
        Access::ShardRules,
    )
    .summary("The simulation's kept input log")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(FAILS),
    OpSpec::get(
        "/v1/sims/{kind}/{name}/ws",
        "simSocket",
        Tag::Sims,
        Access::ShardRules,
    )
    .summary("Open a WebSocket to a simulation shard: snapshots and inputs")
    .detail("The simulation protocol: docs/protocol.md, Simulation shards.")
    .ok(UPGRADE)
    .fails(FAILS),
];

pub const MATCHMAKING: &[OpSpec<'static>] = &[
    OpSpec::get(
        "/v1/match/{kind}/{queue}",
        "matchStats",
        Tag::Matchmaking,
        Access::ShardRules,
    )
    .summary("A matchmaking queue's stats")
    .ok(&[Answer::Json(200, "JsonObject")])
    .fails(FAILS),
    OpSpec::post(
        "/v1/match/{kind}/{queue}",
        "enqueueTicket",
        Tag::Matchmaking,
        Access::ShardRules,
    )
    .summary("Join the queue; the body is the criteria. Answers the ticket")
    .detail(
        "400 `BAD_CRITERIA` if the criteria do not decode. A signed-in player has one \
         waiting ticket: joining again answers it with `dup: true`.",
    )
    .body(Body::Required("Json"))
    .ok(&[Answer::Json(200, "Ticket")])
    .fails(FAILS),
    OpSpec::get(
        "/v1/match/{kind}/{queue}/tickets/{ticket}",
        "getTicket",
        Tag::Matchmaking,
        Access::ShardRules,
    )
    .summary("A ticket, to poll (404 once forgotten)")
    .ok(&[Answer::Json(200, "Ticket")])
    .fails(FAILS),
    OpSpec::new(
        "delete",
        "/v1/match/{kind}/{queue}/tickets/{ticket}",
        "leaveQueue",
        Tag::Matchmaking,
        Access::ShardRules,
    )
    .summary("Leave the queue (409 `NOT_WAITING` once settled)")
    .ok(&[Answer::Json(200, "Ticket")])
    .fails(&[
        Fail::BadRequest,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Conflict,
    ]),
    OpSpec::get(
        "/v1/match/{kind}/{queue}/ws",
        "matchSocket",
        Tag::Matchmaking,
        Access::ShardRules,
    )
    .summary("Open a WebSocket to the queue, to hear of a ticket's assignment")
    .query(&["wsTicket"])
    .ok(UPGRADE)
    .fails(FAILS),
];
