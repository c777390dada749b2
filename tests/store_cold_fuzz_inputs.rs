//! The cold-path fuzz entry point (`pylon_workers::store::fuzz::fuzz_cold_query`)
//! on generated inputs: choice bytes that build bodies, and JSON bodies
//! mutated byte by byte, for every caller. No panic, no row or shard the
//! caller may not see, no answer over the byte budget, no statement SQLite
//! refuses. The coverage-guided run is `bash scripts/fuzz.sh` (target `cold`).

mod gen_support;

use gen_support::Rng;
use pylon_workers::store::fuzz::fuzz_cold_query;

const JSON_SEEDS: [&str; 6] = [
    r#"{"entity":"Card","shard":"team:acme","where":{"title":{"$like":"team:%"}}}"#,
    r#"{"entity":"Message","aggregate":{"op":"count","groupBy":"authorId"}}"#,
    r#"{"entity":"Todo","where":{"$or":[{"done":true},{"ownerId":"ann"}]},"order":["-order"],"limit":2}"#,
    r#"{"entity":"Channel","where":{"tenantId":{"$in":["acme","evil"]}},"limit":1}"#,
    r#"{"entity":"Card","order":["title"],"limit":3,"after":"5b5d"}"#,
    r#"{"entity":"Card","aggregate":{"op":"max","field":"position","groupBy":"done"}}"#,
];

#[test]
fn choice_bytes_for_every_caller() {
    let mut rng = Rng::new(0xc01d_f022);
    for round in 0..6_000 {
        let len = 1 + rng.below(48);
        let mut input: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        input[0] = (round % 7) as u8; // every caller, built bodies
        fuzz_cold_query(&input);
    }
}

#[test]
fn mutated_json_bodies() {
    let mut rng = Rng::new(0x15_0b0d);
    for round in 0..4_000 {
        let mut body = JSON_SEEDS[round % JSON_SEEDS.len()].as_bytes().to_vec();
        for _ in 0..rng.below(3) {
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => body[at] = rng.next() as u8,
                1 => {
                    body.remove(at);
                }
                _ => body.insert(at, *rng.pick(b"{}[]\":,$*?%")),
            }
        }
        let mut input = vec![0x80 | (round % 7) as u8];
        input.extend(body);
        fuzz_cold_query(&input);
    }
}
