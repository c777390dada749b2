//! The in-memory GLOB (`query::glob`) against SQLite's on random patterns
//! and texts: the two evaluators of `Filter::Glob` agree.

mod gen_support;

use gen_support::Rng;
use pylon_workers::query::glob;

const PIECES: [&str; 14] = [
    "*", "?", "[", "]", "^", "-", "a", "b", "c", "z", ":", "é", "[a-c]", "[^b]",
];

fn random(rng: &mut Rng, parts: &[&str], max: usize) -> String {
    let n = rng.below(max + 1);
    (0..n).map(|_| *rng.pick(parts)).collect()
}

#[test]
fn agrees_with_sqlite() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = db.prepare("SELECT ?2 GLOB ?1").unwrap();
    let mut rng = Rng::new(0x61_0b);
    let mut matched = 0;
    for _ in 0..20_000 {
        let pattern = random(&mut rng, &PIECES, 6);
        let text = random(
            &mut rng,
            &["a", "b", "c", "z", ":", "-", "]", "^", "é", "["],
            5,
        );
        let want: bool = stmt
            .query_row(rusqlite::params![pattern, text], |r| r.get(0))
            .unwrap();
        assert_eq!(glob(&pattern, &text), want, "{text:?} GLOB {pattern:?}");
        matched += usize::from(want);
    }
    assert!(matched > 500, "{matched}");
}
