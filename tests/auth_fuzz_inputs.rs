//! The token fuzz entry point (`pylon_workers::auth::fuzz::fuzz_token`) on
//! real tokens, JWKS documents and identity headers, mutated byte by byte:
//! no reader may panic, and what this crate signs must verify. The
//! coverage-guided run is `bash scripts/fuzz.sh` (target `token`).

use pylon_workers::auth::fuzz::fuzz_token;
use pylon_workers::auth::jwt;
use serde_json::json;

mod gen_support;
use gen_support::Rng;

fn seeds() -> Vec<Vec<u8>> {
    let secret = b"fuzzing-secret-fuzzing-secret-32b";
    let claims = json!({"sub": "u1", "exp": 4_000_000_000u64, "nbf": 0, "iss": "pylon",
                        "aud": ["a", "b"], "tenantId": "t1", "roles": ["admin"]});
    vec![
        jwt::sign_hs256(&claims, secret).into_bytes(),
        jwt::sign_with_header(
            &json!({"alg": "HS256", "typ": "JWT", "kid": "pylon-session"}),
            &json!({"sub": "u1", "sid": "s1", "exp": 1, "iss": "pylon", "aud": "pylon"}),
            secret,
        )
        .into_bytes(),
        jwt::sign_with_header(&json!({"alg": "RS256", "kid": "k1"}), &claims, secret).into_bytes(),
        json!({"keys": [
            {"kty": "RSA", "kid": "k1", "alg": "RS256", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "k2", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "k": "c2VjcmV0"}
        ]})
        .to_string()
        .into_bytes(),
        json!({"userId": "u1", "tenantId": "t1", "roles": ["r"], "admin": false})
            .to_string()
            .into_bytes(),
        b"public, max-age=3600, must-revalidate".to_vec(),
        b"team:{tenantId}".to_vec(),
    ]
}

#[test]
fn token_readers_survive_mutated_input() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_7001);
    let mut decoded = 0u32;
    for round in 0..40_000 {
        let mut input = seeds[round % seeds.len()].clone();
        for _ in 0..=rng.below(4) {
            if input.is_empty() {
                break;
            }
            let at = rng.below(input.len());
            match rng.below(4) {
                0 => input[at] = rng.next() as u8,
                1 => {
                    input.remove(at);
                }
                2 => input.insert(at, b".=-_{}\"0aZ"[rng.below(10)]),
                _ => input.truncate(at),
            }
        }
        fuzz_token(&input);
        decoded += u32::from(jwt::decode(&String::from_utf8_lossy(&input)).is_ok());
    }
    // Mutations must reach past the first checks often enough to matter.
    assert!(decoded > 1_000, "only {decoded} mutated inputs decoded");
}

#[test]
fn the_unmutated_seeds_reach_every_reader() {
    for s in seeds() {
        fuzz_token(&s);
    }
    // The signed seeds decode; the JWKS seed parses with usable keys.
    let seeds = seeds();
    assert!(jwt::decode(std::str::from_utf8(&seeds[0]).unwrap()).is_ok());
    let keys =
        pylon_workers::auth::jwk::KeySet::parse(&seeds[3], &[jwt::Alg::Rs256, jwt::Alg::Es256])
            .unwrap();
    assert_eq!(keys.len(), 2);
}
