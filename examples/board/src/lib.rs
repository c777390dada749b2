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

#[cfg(test)]
mod background_tests {
    /// Every cron entry of the manifest is a trigger in wrangler.toml (the
    /// scheduled handler runs entries by their schedule, and only the
    /// listed triggers ever fire), and every queue has its binding.
    #[test]
    fn crons_and_queues_agree_with_wrangler_toml() {
        let toml = include_str!("../../../wrangler.toml");
        let triggers = toml
            .lines()
            .find_map(|l| l.trim().strip_prefix("crons = "))
            .expect("wrangler.toml has [triggers] crons");
        let m = super::app().manifest().unwrap();
        let b = m.background();
        assert!(!b.crons.is_empty());
        for c in &b.crons {
            assert!(
                triggers.contains(&format!("\"{}\"", c.cron)),
                "cron {:?} of entry {} is not in {triggers}",
                c.cron,
                c.name
            );
            // A Rust function of the board, or a file of its functions/ folder.
            let ts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("functions/{}.ts", c.run));
            assert!(
                super::app().functions().lookup(&c.run).is_some() || ts.exists(),
                "cron {}: no function {}",
                c.name,
                c.run
            );
        }
        for q in &b.jobs.queues {
            let binding = pylon_workers::manifest::Background::queue_binding(q);
            assert!(
                toml.contains(&format!("binding = \"{binding}\"")),
                "queue {q}: no binding {binding}"
            );
        }
        for w in &b.workflows {
            for s in w.steps.iter().filter_map(|s| s.run.as_deref()) {
                let ts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(format!("functions/{s}.ts"));
                assert!(
                    super::app().functions().lookup(s).is_some() || ts.exists(),
                    "workflow {}: no function {s}",
                    w.name
                );
            }
        }
    }
}
