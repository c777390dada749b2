//! The smallest app: a manifest, and the line that exports the Worker.

pub fn app() -> pylon_workers::app::App {
    pylon_workers::app::App::new(include_str!("../schema.json"))
}

pylon_workers::export!(app);

#[test]
fn the_manifest_loads() {
    assert!(app().manifest().is_ok());
}
