//! Round trips of every message in both encodings, and robustness of the
//! decoders against random and mutated input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use pylon_workers::protocol::fuzz::fuzz_decode;
use pylon_workers::protocol::*;
use pylon_workers::value::{Row, Value};

/// xorshift64*: small, seeded, good enough to pick shapes.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }

    fn string(&mut self) -> String {
        const PARTS: &[&str] = &[
            "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "\u{0}", "\u{1f}", "é", "日本", "😀",
            "\u{2028}", "type",
        ];
        (0..self.below(6)).map(|_| self.pick(PARTS)).collect()
    }
    fn opt_string(&mut self) -> Option<String> {
        self.coin().then(|| self.string())
    }
    fn opt_u64(&mut self) -> Option<u64> {
        self.coin().then(|| self.u64())
    }
    fn u64(&mut self) -> u64 {
        match self.below(4) {
            0 => self.below(10),
            1 => u64::MAX - self.below(3),
            _ => self.next() >> self.below(64),
        }
    }
    fn u32(&mut self) -> u32 {
        (self.u64() >> 32) as u32 ^ self.u64() as u32
    }
    fn float(&mut self) -> f64 {
        loop {
            let f = match self.below(3) {
                0 => f64::from_bits(self.next()),
                1 => (self.next() as i64 as f64) / 1024.0,
                _ => self.pick(&[
                    0.0,
                    -0.0,
                    0.5,
                    1e300,
                    -2.5e-308,
                    f64::MAX,
                    f64::MIN_POSITIVE,
                    5e-324,
                ]),
            };
            if f.is_finite() {
                return f;
            }
        }
    }
    fn value(&mut self, depth: u32) -> Value {
        let kinds = if depth >= 3 { 5 } else { 7 };
        match self.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(self.coin()),
            2 => Value::Int(
                self.pick(&[0, -1, i64::MIN, i64::MAX])
                    .wrapping_add(self.next() as i64 >> self.below(64)),
            ),
            3 => Value::Float(self.float()),
            4 => Value::Text(self.string()),
            5 => Value::List((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => Value::Map(
                (0..self.below(4))
                    .map(|_| (self.string(), self.value(depth + 1)))
                    .collect(),
            ),
        }
    }
    fn row(&mut self) -> Row {
        let mut r: Row = (0..self.below(4))
            .map(|_| (self.string(), self.value(1)))
            .collect();
        if self.below(4) != 0 {
            r.insert("id".into(), Value::Text(self.string()));
        }
        r
    }
    fn rows(&mut self) -> Vec<Row> {
        (0..self.below(4)).map(|_| self.row()).collect()
    }
    fn strings(&mut self) -> Vec<String> {
        (0..self.below(4)).map(|_| self.string()).collect()
    }
    fn positioned(&mut self) -> Vec<Positioned> {
        (0..self.below(4))
            .map(|_| Positioned {
                pos: self.u32(),
                row: self.row(),
            })
            .collect()
    }
    fn members(&mut self) -> Vec<Member> {
        (0..self.below(4))
            .map(|_| Member {
                conn: self.string(),
                state: self.value(0),
            })
            .collect()
    }
    fn op(&mut self) -> Op {
        match self.below(4) {
            0 => Op::Insert {
                entity: self.string(),
                row: self.row(),
            },
            1 => Op::Update {
                entity: self.string(),
                id: self.string(),
                set: self.row(),
            },
            2 => Op::Upsert {
                entity: self.string(),
                row: self.row(),
            },
            _ => Op::Delete {
                entity: self.string(),
                id: self.string(),
            },
        }
    }

    fn client(&mut self) -> ClientMsg {
        match self.below(7) {
            0 => ClientMsg::Hello(Hello {
                client: self.opt_string(),
                token: self.opt_string(),
            }),
            1 => ClientMsg::Sub(Sub {
                id: self.string(),
                entity: self.string(),
                r#where: self.value(0),
                order: self.value(0),
                limit: self.coin().then(|| self.u32()),
                since: self.opt_u64(),
                count: self.coin(),
            }),
            2 => ClientMsg::Unsub(Unsub { id: self.string() }),
            3 => ClientMsg::Mut(Mut {
                op: self.string(),
                ops: (0..self.below(4)).map(|_| self.op()).collect(),
            }),
            4 => ClientMsg::Presence(Presence {
                state: self.value(0),
            }),
            5 => ClientMsg::Bcast(SendBcast {
                topic: self.string(),
                data: self.value(0),
            }),
            _ => ClientMsg::Ping(Ping { t: self.opt_u64() }),
        }
    }

    fn server(&mut self) -> ServerMsg {
        match self.below(10) {
            0 => ServerMsg::Welcome(Welcome {
                protocol: self.string(),
                shard: self.string(),
                seq: self.u64(),
                conn: self.string(),
                encoding: self.pick(&Encoding::ALL),
                window: None,
            }),
            1 => ServerMsg::Snap(Snap {
                id: self.string(),
                seq: self.u64(),
                rows: self.rows(),
                count: self.opt_u64(),
            }),
            2 => ServerMsg::Diff(Diff {
                id: self.string(),
                from: self.u64(),
                seq: self.u64(),
                added: self.positioned(),
                changed: self.positioned(),
                removed: self.strings(),
                count: self.opt_u64(),
            }),
            3 => ServerMsg::Reset(Reset {
                id: self.string(),
                reason: self.string(),
            }),
            4 => ServerMsg::Ack(Ack {
                op: self.string(),
                seq: self.u64(),
                dup: self.coin(),
            }),
            5 => ServerMsg::Err(ErrorMsg {
                code: self.pick(ErrorCode::ALL),
                message: self.string(),
                op: self.opt_string(),
                sub: self.opt_string(),
            }),
            6 => ServerMsg::PresenceState(PresenceState {
                members: self.members(),
            }),
            7 => ServerMsg::PresenceDiff(PresenceDiff {
                joins: self.members(),
                updates: self.members(),
                leaves: self.strings(),
            }),
            8 => ServerMsg::Bcast(Bcast {
                topic: self.string(),
                data: self.value(0),
                from: self.string(),
            }),
            _ => ServerMsg::Pong(Pong { t: self.opt_u64() }),
        }
    }
}

/// Equality that treats floats by bit pattern, so `-0.0` vs `0.0` would be
/// caught (the derived `PartialEq` would not).
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn every_client_message_round_trips_in_both_encodings() {
    let mut rng = Rng::new(1);
    let mut seen = BTreeMap::new();
    for _ in 0..20_000 {
        let m = rng.client();
        *seen.entry(m.name()).or_insert(0) += 1;
        for enc in Encoding::ALL {
            let frame = encode_client(enc, &m);
            assert_eq!(matches!(frame, Frame::Binary(_)), enc.is_binary());
            let back = decode_client_frame(enc, frame.as_ref(), usize::MAX)
                .unwrap_or_else(|e| panic!("{enc:?} {m:?} -> {frame:?}: {e}"));
            assert!(same(&m, &back), "{enc:?}\n{m:?}\n{back:?}\n{frame:?}");
        }
    }
    assert_eq!(seen.len(), 7, "{seen:?}");
}

#[test]
fn every_server_message_round_trips_in_both_encodings() {
    let mut rng = Rng::new(2);
    let mut seen = BTreeMap::new();
    for _ in 0..20_000 {
        let m = rng.server();
        *seen.entry(m.name()).or_insert(0) += 1;
        for enc in Encoding::ALL {
            let frame = encode_server(enc, &m);
            let back = decode_server_frame(enc, frame.as_ref(), usize::MAX)
                .unwrap_or_else(|e| panic!("{enc:?} {m:?} -> {frame:?}: {e}"));
            assert!(same(&m, &back), "{enc:?}\n{m:?}\n{back:?}\n{frame:?}");
        }
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
}

/// The depth-bounded value decoder reads exactly what `Value`'s own
/// `Serialize` writes, and writes what its `Deserialize` reads.
#[test]
fn postcard_values_match_the_value_module() {
    let mut rng = Rng::new(3);
    for _ in 0..5_000 {
        let v = rng.value(0);
        let own = postcard::to_allocvec(&v).unwrap();
        let msg = ClientMsg::Presence(Presence { state: v.clone() });
        let ours = encode_client(Encoding::Postcard, &msg);
        assert_eq!(&ours.as_bytes()[1..], &own[..]);
        let via_value: Value = postcard::from_bytes(&ours.as_bytes()[1..]).unwrap();
        assert!(same(&v, &via_value));
    }
}

/// Bytes of small messages, pinned: the postcard form is wire format.
#[test]
fn postcard_bytes_are_pinned() {
    let c = |m: ClientMsg| encode_client(Encoding::Postcard, &m).as_bytes().to_vec();
    let s = |m: ServerMsg| encode_server(Encoding::Postcard, &m).as_bytes().to_vec();
    assert_eq!(c(ClientMsg::Hello(Hello::default())), [0, 0, 0]);
    assert_eq!(
        c(ClientMsg::Unsub(Unsub { id: "s1".into() })),
        [2, 2, b's', b'1']
    );
    assert_eq!(
        c(ClientMsg::Sub(Sub {
            id: "a".into(),
            entity: "T".into(),
            r#where: Value::Map([("done".to_string(), Value::Bool(false))].into()),
            limit: Some(20),
            ..Default::default()
        })),
        [1, 1, b'a', 1, b'T', 6, 1, 4, b'd', b'o', b'n', b'e', 1, 0, 0, 1, 20, 0, 0]
    );
    assert_eq!(
        c(ClientMsg::Mut(Mut {
            op: "o".into(),
            ops: vec![Op::Delete {
                entity: "T".into(),
                id: "x".into()
            }]
        })),
        [3, 1, b'o', 1, 3, 1, b'T', 1, b'x']
    );
    assert_eq!(
        c(ClientMsg::Presence(Presence {
            state: Value::Int(-2)
        })),
        [4, 2, 3]
    );
    assert_eq!(
        c(ClientMsg::Bcast(SendBcast {
            topic: "t".into(),
            data: Value::Null
        })),
        [5, 1, b't', 0]
    );
    assert_eq!(
        c(ClientMsg::Ping(Ping { t: Some(300) })),
        [6, 1, 0xac, 0x02]
    );

    assert_eq!(
        s(ServerMsg::Welcome(Welcome {
            protocol: PROTOCOL.into(),
            shard: "s".into(),
            seq: 1,
            conn: "c".into(),
            encoding: Encoding::Postcard,
            window: None,
        })),
        [0, 8, b'p', b'y', b'l', b'o', b'n', b'.', b'v', b'1', 1, b's', 1, 1, b'c', 1]
    );
    assert_eq!(
        s(ServerMsg::Snap(Snap {
            id: "a".into(),
            seq: 2,
            rows: vec![],
            count: None
        })),
        [1, 1, b'a', 2, 0, 0]
    );
    assert_eq!(
        s(ServerMsg::Diff(Diff {
            id: "a".into(),
            from: 2,
            seq: 3,
            removed: vec!["x".into()],
            ..Default::default()
        })),
        [2, 1, b'a', 2, 3, 0, 0, 1, 1, b'x', 0]
    );
    assert_eq!(
        s(ServerMsg::Reset(Reset {
            id: "a".into(),
            reason: "r".into()
        })),
        [3, 1, b'a', 1, b'r']
    );
    assert_eq!(
        s(ServerMsg::Ack(Ack {
            op: "o".into(),
            seq: 4,
            dup: true
        })),
        [4, 1, b'o', 4, 1]
    );
    assert_eq!(
        s(ServerMsg::Err(ErrorMsg {
            code: ErrorCode::NotFound,
            message: "".into(),
            op: None,
            sub: None
        })),
        [5, 9, b'N', b'O', b'T', b'_', b'F', b'O', b'U', b'N', b'D', 0, 0, 0]
    );
    assert_eq!(
        s(ServerMsg::PresenceState(PresenceState::default())),
        [6, 0]
    );
    assert_eq!(
        s(ServerMsg::PresenceDiff(PresenceDiff::default())),
        [7, 0, 0, 0]
    );
    assert_eq!(
        s(ServerMsg::Bcast(Bcast {
            topic: "t".into(),
            data: Value::Bool(true),
            from: "c".into()
        })),
        [8, 1, b't', 1, 1, 1, b'c']
    );
    assert_eq!(s(ServerMsg::Pong(Pong { t: None })), [9, 0]);
}

/// Random bytes, random JSON-ish token soup, and mutations of valid frames:
/// nothing panics and whatever decodes re-encodes stably.
#[test]
fn random_and_mutated_input_never_panics() {
    let start = Instant::now();
    let mut rng = Rng::new(4);
    let mut runs = 0u32;
    let mut decoded = 0u32;

    // Valid frames to mutate.
    let mut corpus: Vec<Vec<u8>> = Vec::new();
    for _ in 0..200 {
        let c = rng.client();
        let s = rng.server();
        for enc in Encoding::ALL {
            corpus.push(encode_client(enc, &c).as_bytes().to_vec());
            corpus.push(encode_server(enc, &s).as_bytes().to_vec());
        }
    }

    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"type\"",
        "\"sub\"",
        "\"mut\"",
        "\"diff\"",
        "\"id\"",
        "\"op\"",
        "\"ops\"",
        "\"row\"",
        "\"insert\"",
        "\"added\"",
        "\"pos\"",
        "\"where\"",
        "\"limit\"",
        "\"rows\"",
        "\"members\"",
        "\"err\"",
        "\"code\"",
        "null",
        "true",
        "1",
        "-1",
        "1e999",
        "18446744073709551616",
        "0.5",
        "\"\\u0000\"",
        "\"\\ud800\"",
        " ",
    ];

    for i in 0..240_000u32 {
        let input: Vec<u8> = match i % 3 {
            0 => (0..rng.below(48)).map(|_| rng.next() as u8).collect(),
            1 => (0..rng.below(24))
                .flat_map(|_| rng.pick(TOKENS).bytes())
                .collect(),
            _ => {
                let mut f = corpus[rng.below(corpus.len() as u64) as usize].clone();
                for _ in 0..=rng.below(3) {
                    let at = rng.below(f.len() as u64 + 1) as usize;
                    match rng.below(4) {
                        0 => f.truncate(at),
                        1 if at < f.len() => f[at] ^= 1 << rng.below(8),
                        2 if at < f.len() => {
                            f[at] = rng.pick(&[0, 0x7f, 0x80, 0xff, b'"', b'{', b'['])
                        }
                        _ => f.insert(at, rng.next() as u8),
                    }
                }
                f
            }
        };
        fuzz_decode(&input);
        runs += 1;
        for enc in Encoding::ALL {
            decoded +=
                u32::from(decode_client(enc, &input).is_ok() || decode_server(enc, &input).is_ok());
        }
    }
    let took = start.elapsed();
    assert_eq!(runs, 240_000);
    // The mutations must reach past the first checks often enough to matter.
    assert!(decoded > 2_000, "only {decoded} inputs decoded");
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

/// `welcome.window` is a new optional JSON field (old clients ignore it);
/// postcard has no field names, so its `welcome` is unchanged and decodes
/// without it.
#[test]
fn the_welcome_window_is_json_only() {
    let w = |window| {
        ServerMsg::Welcome(Welcome {
            protocol: PROTOCOL.into(),
            shard: "s".into(),
            seq: 1,
            conn: "c".into(),
            encoding: Encoding::Json,
            window,
        })
    };
    let with = w(Some(1 << 20));
    let json = match encode_server(Encoding::Json, &with) {
        Frame::Text(t) => t,
        other => panic!("{other:?}"),
    };
    assert!(json.ends_with(r#","window":1048576}"#), "{json}");
    assert_eq!(
        decode_server(Encoding::Json, json.as_bytes()).unwrap(),
        with
    );
    let without = r#"{"type":"welcome","protocol":"pylon.v1","shard":"s","seq":1,"conn":"c","encoding":"json"}"#;
    assert_eq!(
        decode_server(Encoding::Json, without.as_bytes()).unwrap(),
        w(None)
    );
    let pc = encode_server(Encoding::Postcard, &with);
    assert_eq!(pc, encode_server(Encoding::Postcard, &w(None)));
    assert_eq!(
        decode_server(Encoding::Postcard, pc.as_ref().as_bytes()).unwrap(),
        w(None)
    );
}
