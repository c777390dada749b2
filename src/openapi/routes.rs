//! The router's routes (src/route.rs, src/glue/router.rs) as OpenAPI path
//! items, written as data in `routes/*.json`: `core.json` (health, this
//! document, the cold path, a shard's routes), `background.json` (jobs,
//! workflows, crons), `cache.json`, `files.json`, `channels.json`, `signin.json`, `objects.json` (the app's own kinds,
//! simulations, matchmaking), `rooms.json`. Each operation names who may call it in
//! `x-pylon-access` (see `access.rs`), which the manifest turns into its
//! `security`. A function's route is `functions.rs`'s, one per function.

use serde_json::{Map, Value};

use super::access;
use super::json::parse;
use crate::manifest::Manifest;

/// The route files, in the order the document lists them.
const AREAS: [&str; 8] = [
    include_str!("routes/core.json"),
    include_str!("routes/background.json"),
    include_str!("routes/cache.json"),
    include_str!("routes/files.json"),
    include_str!("routes/channels.json"),
    include_str!("routes/signin.json"),
    include_str!("routes/objects.json"),
    include_str!("routes/rooms.json"),
];

/// Every route of the router but the functions', each operation with its
/// security and "Who:" read against `manifest`.
pub fn paths(manifest: &Manifest) -> Map<String, Value> {
    let mut paths = Map::new();
    for area in AREAS {
        if let Value::Object(items) = parse(area) {
            paths.extend(items);
        }
    }
    for item in paths.values_mut() {
        if let Value::Object(operations) = item {
            for op in operations.values_mut() {
                access::apply(op, manifest);
            }
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{self, Area, Route};
    use access::Access;

    /// The operations of the route files, as written.
    fn operations() -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for area in AREAS {
            let items: Map<String, Value> =
                serde_json::from_str(area).expect("a route file parses");
            for (path, item) in items {
                for (method, op) in item.as_object().expect("a path item").clone() {
                    out.push((path.clone(), method, op));
                }
            }
        }
        out
    }

    /// The tags an operation of a router route may have. Exhaustive on
    /// purpose: a new route of the router does not compile here until it
    /// is placed (and then described in a route file).
    fn tags_of(route: &Route) -> &'static [&'static str] {
        match route {
            Route::Health | Route::OpenApi => &["meta"],
            Route::ColdQuery | Route::ShardList => &["cold path"],
            Route::Shard { rest, .. } if rest.starts_with("fn/") => &["functions"],
            Route::Shard { .. } => &["shards"],
            Route::Auth { .. } => &["sign-in"],
            Route::Object { .. } => &["objects", "sims", "matchmaking"],
            Route::Cache { .. } => &["cache"],
            Route::RoomList | Route::Room { .. } => &["rooms"],
            Route::Files { .. } => &["files"],
            Route::Channels { .. } => &["channels"],
            Route::Background { area, .. } => match area {
                Area::Jobs => &["jobs"],
                Area::Workflows => &["workflows"],
                Area::Crons => &["crons"],
            },
        }
    }

    #[test]
    fn every_path_is_a_route_of_the_router() {
        let ops = operations();
        assert!(ops.len() >= 50, "{} operations", ops.len());
        for (path, method, op) in ops {
            let mut sample = path.clone();
            for p in super::super::placeholders(&path) {
                sample = sample.replace(&format!("{{{p}}}"), "x1");
            }
            let route = route::parse(&sample).unwrap_or_else(|e| panic!("{method} {path}: {e}"));
            let tag = op["tags"][0].as_str().unwrap();
            assert!(
                tags_of(&route).contains(&tag),
                "{method} {path} is {route:?}, tagged {tag}"
            );
        }
    }

    #[test]
    fn every_operation_says_who_and_what_it_can_fail_with() {
        for (path, method, op) in operations() {
            let at = format!("{method} {path}");
            assert!(op["operationId"].is_string(), "{at}");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{at}");
            assert!(op["summary"].is_string(), "{at}");
            let name = op["x-pylon-access"].as_str().unwrap_or_default();
            let access = Access::from_name(name).unwrap_or_else(|| panic!("{at}: {name:?}"));
            let responses = op["responses"].as_object().unwrap();
            // Every route can fail inside; every route that reads
            // credentials can refuse them; every route but health and this
            // document is under the router's rate limit.
            assert!(responses.contains_key("500"), "{at}");
            if access != Access::Public {
                assert!(responses.contains_key("401"), "{at}");
            }
            assert_eq!(
                responses.contains_key("429"),
                op["tags"][0] != "meta",
                "{at}"
            );
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('1') || s.starts_with('2') || s.starts_with('3')),
                "{at}: no success"
            );
        }
    }

    #[test]
    fn shard_routes_are_the_shards() {
        // The rests the shard object answers (src/shard/object.rs) and
        // the host's `stats` and `alive`, by name.
        let rests: Vec<String> = operations()
            .into_iter()
            .filter_map(|(path, ..)| Some(path.strip_prefix("/v1/shards/{shard}/")?.to_owned()))
            .collect();
        assert_eq!(
            rests,
            [
                "alive",
                "mutate",
                "query",
                "scheduled",
                "scheduled/{scheduledId}/cancel",
                "stats",
                "ws"
            ]
        );
    }

    #[test]
    fn access_is_applied() {
        let m = Manifest::from_json_str(include_str!("../../examples/board/schema.json")).unwrap();
        let paths = paths(&m);
        let op = &paths["/v1/crons"]["get"];
        assert_eq!(op["security"].as_array().unwrap().len(), 2);
        assert!(op["description"]
            .as_str()
            .unwrap()
            .starts_with("Who: admins only"));
        let op = &paths["/v1/query"]["post"];
        let d = op["description"].as_str().unwrap();
        assert!(
            d.starts_with("Rows of every shard") && d.contains("\n\nWho: any caller"),
            "{d}"
        );
    }
}
