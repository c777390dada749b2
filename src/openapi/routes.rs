//! The router's routes (src/route.rs, src/glue/router.rs), as operations:
//! health, this document, the cold path and a shard's routes here; jobs,
//! workflows and crons in `background.rs`, sign-in in `signin.rs`, the
//! app's own object kinds in `objects.rs`. A function's route is
//! `functions.rs`'s, one per function.

use super::access::Access;
use super::operation::{Answer, Body, Fail, OpSpec, Tag};

const META: &[OpSpec<'static>] = &[
    OpSpec::get("/healthz", "health", Tag::Meta, Access::Public)
        .summary("Whether the Worker runs, and the runtime's version")
        .ok(&[Answer::Json(200, "Health")]),
    OpSpec::get("/v1/openapi.json", "openapi", Tag::Meta, Access::Public)
        .summary("This document")
        .detail(
            "Generated from the manifest and the app's functions; cached for 5 minutes \
             (`Cache-Control: public, max-age=300`). It describes the API, not data, so it \
             needs no credentials (docs/openapi.md).",
        )
        .ok(&[Answer::Json(200, "JsonObject")]),
];

const COLD_PATH: &[OpSpec<'static>] = &[
    OpSpec::post("/v1/query", "coldQuery", Tag::ColdPath, Access::Caller)
        .summary("Query across shards, from D1")
        .detail(
            "Rows of every shard the caller may enter (the shard rules), read policies \
             applied, copied to D1 by each shard's outbox within about a second. Bodies are \
             at most 1 MiB, answers one page of at most 1 MiB.",
        )
        .body(Body::Required("ColdQuery"))
        .ok(&[Answer::Json(200, "ColdAnswer")])
        .fails(&[
            Fail::BadRequest,
            Fail::Forbidden,
            Fail::TooLarge,
            Fail::Unavailable,
        ]),
    OpSpec::get("/v1/shards", "listShards", Tag::ColdPath, Access::Caller)
        .summary("The shards the caller may enter, from D1, by name")
        .query(&["after", "limit"])
        .ok(&[Answer::Json(200, "ShardDirectory")])
        .fails(&[Fail::BadRequest, Fail::Unavailable]),
];

/// Every shard route needs its shard name to be valid and its caller
/// admitted by the shard rules.
const SHARD_FAILS: &[Fail] = &[Fail::BadRequest, Fail::Forbidden, Fail::Unavailable];

const SHARDS: &[OpSpec<'static>] = &[
    OpSpec::post(
        "/v1/shards/{shard}/query",
        "queryShard",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("One page of a query on the shard's rows")
    .detail("The query language is docs/queries.md's; read policies apply to every row.")
    .body(Body::Required("ShardQuery"))
    .ok(&[Answer::Json(200, "QueryAnswer")])
    .fails(&[
        Fail::BadRequest,
        Fail::Forbidden,
        Fail::TooLarge,
        Fail::Unavailable,
    ]),
    OpSpec::post(
        "/v1/shards/{shard}/mutate",
        "mutateShard",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("Write rows: ops applied in order, all or nothing")
    .detail("Answered once the commit is durable; write policies apply to every op.")
    .body(Body::Required("Mutation"))
    .ok(&[Answer::Json(200, "MutationResult")])
    .fails(&[
        Fail::BadRequest,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Conflict,
        Fail::TooLarge,
        Fail::Unavailable,
    ]),
    OpSpec::get(
        "/v1/shards/{shard}/stats",
        "shardStats",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("The shard's figures: seq, connections, wakes, storage, outbox")
    .ok(&[Answer::Json(200, "ShardStats")])
    .fails(SHARD_FAILS),
    OpSpec::get(
        "/v1/shards/{shard}/scheduled",
        "listScheduled",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("Scheduled function calls waiting in the shard")
    .detail(
        "An admin sees every one; anyone else only their own. `limit`: 1 to 1,000, default 100.",
    )
    .query(&["limit"])
    .ok(&[Answer::Json(200, "ScheduledList")])
    .fails(SHARD_FAILS),
    OpSpec::post(
        "/v1/shards/{shard}/scheduled/{scheduledId}/cancel",
        "cancelScheduled",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("Cancel a scheduled call (an admin's, or the caller's own)")
    .ok(&[Answer::Json(200, "ScheduledCancelled")])
    .fails(&[
        Fail::BadRequest,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Unavailable,
    ]),
    OpSpec::get(
        "/v1/shards/{shard}/ws",
        "shardSocket",
        Tag::Shards,
        Access::ShardRules,
    )
    .summary("Open a WebSocket to the shard: live queries, writes, presence")
    .detail(
        "A WebSocket upgrade (`Upgrade: websocket`), answered 101. Over it, the pylon.v1 \
         protocol (docs/protocol.md): `sub` a query and get a `snap`, then a `diff` for every \
         change; `mut`, `call`, `watch`, `presence`, `bcast`. Only `pylon.*` subprotocols the \
         server does not speak are refused (400).",
    )
    .ok(&[Answer::Response(101, "Upgrade")])
    .fails(&[
        Fail::BadRequest,
        Fail::Forbidden,
        Fail::UpgradeRequired,
        Fail::Unavailable,
    ]),
];

/// Every route of the router but the functions', in the order the
/// document lists them.
pub fn all() -> impl Iterator<Item = &'static OpSpec<'static>> {
    [
        META,
        COLD_PATH,
        SHARDS,
        super::background::JOBS,
        super::background::WORKFLOWS,
        super::background::CRONS,
        super::signin::ROUTES,
        super::objects::OBJECTS,
        super::objects::SIMS,
        super::objects::MATCHMAKING,
    ]
    .into_iter()
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{self, Area, Route};

    /// The group a router route belongs to. Exhaustive on purpose: a new
    /// route of the router does not compile here until it is placed (and
    /// then described in a table).
    fn tags_of(route: &Route) -> &'static [Tag] {
        match route {
            Route::Health | Route::OpenApi => &[Tag::Meta],
            Route::ColdQuery | Route::ShardList => &[Tag::ColdPath],
            Route::Shard { rest, .. } if rest.starts_with("fn/") => &[Tag::Functions],
            Route::Shard { .. } => &[Tag::Shards],
            Route::Auth { .. } => &[Tag::SignIn],
            Route::Object { .. } => &[Tag::Objects, Tag::Sims, Tag::Matchmaking],
            Route::Background { area, .. } => match area {
                Area::Jobs => &[Tag::Jobs],
                Area::Workflows => &[Tag::Workflows],
                Area::Crons => &[Tag::Crons],
            },
        }
    }

    #[test]
    fn every_path_is_a_route_of_the_router() {
        let mut n = 0;
        for spec in all() {
            let mut sample = spec.path.to_owned();
            for p in super::super::operation::placeholders(spec.path) {
                sample = sample.replace(&format!("{{{p}}}"), "x1");
            }
            let route = route::parse(&sample)
                .unwrap_or_else(|e| panic!("{} {}: {e}", spec.method, spec.path));
            assert!(
                tags_of(&route).contains(&spec.tag),
                "{} is {route:?}, tagged {:?}",
                spec.path,
                spec.tag
            );
            n += 1;
        }
        assert!(n >= 40, "{n} operations");
    }

    #[test]
    fn shard_routes_are_the_shards() {
        // The rests the shard object answers (src/shard/object.rs) and
        // the host's `stats`.
        let rests: Vec<&str> = SHARDS
            .iter()
            .map(|s| s.path.trim_start_matches("/v1/shards/{shard}/"))
            .collect();
        assert_eq!(
            rests,
            [
                "query",
                "mutate",
                "stats",
                "scheduled",
                "scheduled/{scheduledId}/cancel",
                "ws"
            ]
        );
    }
}
