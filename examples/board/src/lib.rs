//! The demo board (`public/` is its page): cards anyone in a room can add
//! and tick, with presence, plus the policy-guarded entities of the
//! example schema (`Todo`, `Message`, `Channel`, `User`). Everything it
//! adds to the runtime is declared here.

use pylon_workers::app::App;

pub mod functions;
pub mod tally;

/// The board's app: its manifest (`schema.json`, or `PYLON_SCHEMA`) and
/// its Rust server functions (`functions.rs`; the TypeScript ones, in
/// `functions/`, are bundled into the Worker by the build).
pub fn app() -> App {
    App::new(include_str!(concat!(env!("OUT_DIR"), "/schema.json")))
        .with_functions(functions::all())
}

// Shard and Auth come with every app; Tally is the board's own kind;
// Counter and Plane are the library's simulation kinds (docs/sims.md), at
// /v1/sims/counter/{id} and /v1/sims/plane/{id} (the game page,
// public/plane.html); Duels is a matchmaking queue that pairs players into
// planes, at /v1/match/duels/{queue}.
pylon_workers::export!(app, objects {
    Tally: tally::Tally<pylon_workers::runtime::DoSql>,
    Counter: pylon_workers::sim::SimShard<pylon_workers::sim::counter::Counter, pylon_workers::runtime::DoSql>,
    Plane: pylon_workers::sim::SimShard<pylon_workers::sim::plane::Plane, pylon_workers::runtime::DoSql>,
    Duels: pylon_workers::sim::matchmaking::Matchmaker<pylon_workers::sim::matchmaking::Pairs, pylon_workers::runtime::DoSql>,
});

#[cfg(test)]
mod tests {
    #[test]
    fn the_manifest_loads() {
        let m = super::app().manifest().expect("the board's manifest loads");
        assert!(m.entity("Card").is_some());
    }
}
