//! Every decode error, deep nesting, negotiation and error codes.

use pylon_workers::protocol::*;
use pylon_workers::value::Value;

const JSON: Encoding = Encoding::Json;
const PC: Encoding = Encoding::Postcard;

fn client_json(s: &str) -> Result<ClientMsg, DecodeError> {
    decode_client(JSON, s.as_bytes())
}

fn bad_field(e: &DecodeError) -> Option<&str> {
    match e {
        DecodeError::BadMessage { field, .. } => field.as_deref(),
        _ => panic!("not BAD_MESSAGE: {e:?}"),
    }
}

#[test]
fn bad_frame() {
    for s in [
        "",
        "not json",
        "{\"type\":",
        "{\"type\":\"ping\"} x",
        "{'type':'ping'}",
    ] {
        let e = client_json(s).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadFrame, "{s:?}: {e}");
        assert_eq!(e.code().as_str(), "BAD_FRAME");
    }
    let e = decode_client(JSON, b"{\"type\":\"ping\xff\"}").unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadFrame);
    assert!(e.to_string().contains("UTF-8"), "{e}");

    assert_eq!(
        decode_client(PC, &[]).unwrap_err().code(),
        ErrorCode::BadFrame
    );
    assert_eq!(
        decode_client(PC, &[0x80]).unwrap_err().code(),
        ErrorCode::BadFrame
    );
    assert_eq!(
        decode_server(PC, &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
            .unwrap_err()
            .code(),
        ErrorCode::BadFrame
    );
}

#[test]
fn wrong_frame_kind() {
    let ping = r#"{"type":"ping"}"#;
    let e = decode_client_frame(JSON, FrameRef::Binary(ping.as_bytes()), 1 << 20).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadFrame);
    assert!(e.to_string().contains("binary frame"), "{e}");
    assert!(decode_client_frame(JSON, FrameRef::Text(ping), 1 << 20).is_ok());

    let bin = encode_client(PC, &ClientMsg::Ping(Ping { t: None }));
    let e = decode_client_frame(PC, FrameRef::Text("\u{6}\u{0}"), 1 << 20).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadFrame);
    assert!(e.to_string().contains("text frame"), "{e}");
    assert!(decode_client_frame(PC, bin.as_ref(), 1 << 20).is_ok());

    let e = decode_server_frame(JSON, FrameRef::Binary(b"{}"), 1 << 20).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadFrame);
}

#[test]
fn frame_too_large() {
    let ping = r#"{"type":"ping","t":1}"#;
    assert!(decode_client_frame(JSON, FrameRef::Text(ping), ping.len()).is_ok());
    let e = decode_client_frame(JSON, FrameRef::Text(ping), ping.len() - 1).unwrap_err();
    assert_eq!(
        e,
        DecodeError::FrameTooLarge {
            len: ping.len(),
            max: ping.len() - 1
        }
    );
    assert_eq!(e.code(), ErrorCode::FrameTooLarge);
    assert_eq!(e.close_code(), Some(1009));
    let e = decode_server_frame(PC, FrameRef::Binary(&[9; 100]), 99).unwrap_err();
    assert_eq!(e.code(), ErrorCode::FrameTooLarge);
}

#[test]
fn unknown_type_carries_the_type_and_context() {
    let e = client_json(r#"{"id":"s1","type":"subscribe","op":"o1"}"#).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownType {
            ty: "subscribe".into(),
            sub: Some("s1".into()),
            op: Some("o1".into())
        }
    );
    assert_eq!(e.code(), ErrorCode::UnknownType);
    let err = e.to_err();
    assert_eq!(err.code, ErrorCode::UnknownType);
    assert_eq!(err.sub.as_deref(), Some("s1"));
    assert_eq!(err.op.as_deref(), Some("o1"));
    assert!(err.message.contains("subscribe"));

    // A server message type is unknown to the client decoder and back.
    assert_eq!(
        client_json(r#"{"type":"snap"}"#).unwrap_err().code(),
        ErrorCode::UnknownType
    );
    let e = decode_server(JSON, br#"{"type":"sub"}"#).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownType);

    // postcard: the variant index, in decimal.
    let e = decode_client(PC, &[9]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownType {
            ty: "9".into(),
            sub: None,
            op: None
        }
    );
    let e = decode_server(PC, &[0x80, 0x01]).unwrap_err();
    assert_eq!(
        e,
        DecodeError::UnknownType {
            ty: "128".into(),
            sub: None,
            op: None
        }
    );
}

#[test]
fn bad_message_names_the_field() {
    let cases = [
        (r#"{"type":"sub","id":"s1"}"#, Some("entity")),
        (r#"{"type":"sub","id":"s1","entity":null}"#, Some("entity")),
        (
            r#"{"type":"sub","id":"s1","entity":"T","limit":"x"}"#,
            Some("limit"),
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"T","limit":-1}"#,
            Some("limit"),
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"T","limit":4294967296}"#,
            Some("limit"),
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"T","since":1.5}"#,
            Some("since"),
        ),
        (
            r#"{"type":"sub","id":"s1","entity":"T","count":1}"#,
            Some("count"),
        ),
        (r#"{"type":"sub","id":7,"entity":"T"}"#, Some("id")),
        (r#"{"type":"unsub","id":"a","id":"b"}"#, Some("id")),
        (r#"{"type":1}"#, Some("type")),
        (r#"{"id":"s1"}"#, Some("type")),
        (r#"{"type":"hello","token":false}"#, Some("token")),
        (r#"{"type":"mut","op":"o1"}"#, Some("ops")),
        (r#"{"type":"mut","op":"o1","ops":{}}"#, Some("ops")),
        (r#"{"type":"mut","op":"o1","ops":[1]}"#, Some("ops[0]")),
        (
            r#"{"type":"mut","op":"o1","ops":[{"entity":"T"}]}"#,
            Some("ops[0].type"),
        ),
        (
            r#"{"type":"mut","op":"o1","ops":[{"type":"drop","entity":"T"}]}"#,
            Some("ops[0].type"),
        ),
        (
            r#"{"type":"mut","op":"o1","ops":[{"type":"delete","entity":"T","id":"a"},{"type":"update","entity":"T","set":{}}]}"#,
            Some("ops[1].id"),
        ),
        (
            r#"{"type":"mut","op":"o1","ops":[{"type":"insert","entity":"T","row":[]}]}"#,
            Some("ops[0].row"),
        ),
        (r#"{"type":"bcast","data":1}"#, Some("topic")),
        (r#"{"type":"ping","t":"now"}"#, Some("t")),
        ("[1,2]", None),
        ("\"ping\"", None),
    ];
    for (text, field) in cases {
        let e = client_json(text).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadMessage, "{text}: {e}");
        assert_eq!(bad_field(&e), field, "{text}: {e}");
        assert!(!e.to_string().contains(" at line "), "{e}");
    }

    // The id / op context is attached even when a later field is bad.
    let e = client_json(r#"{"type":"sub","limit":"x","id":"s9","entity":"T"}"#).unwrap_err();
    assert_eq!(e.sub(), Some("s9"));
    assert_eq!(e.to_err().sub.as_deref(), Some("s9"));
    let e = client_json(r#"{"type":"mut","ops":[{}],"op":"o9"}"#).unwrap_err();
    assert_eq!(e.op(), Some("o9"));
    assert_eq!(e.to_string(), "bad message: field `ops[0].type`: missing");

    let server_cases = [
        (
            r#"{"type":"diff","id":"s","from":1,"seq":2,"added":[{"row":{}}]}"#,
            "added[0].pos",
        ),
        (
            r#"{"type":"snap","id":"s","seq":2,"rows":[{},1]}"#,
            "rows[1]",
        ),
        (
            r#"{"type":"welcome","protocol":"pylon.v1","shard":"a","seq":0,"conn":"c","encoding":"xml"}"#,
            "encoding",
        ),
        (r#"{"type":"presence_state"}"#, "members"),
        (r#"{"type":"presence_diff","leaves":[1]}"#, "leaves"),
        (r#"{"type":"bcast","topic":"t","data":1,"from":3}"#, "from"),
    ];
    for (text, field) in server_cases {
        let e = decode_server(JSON, text.as_bytes()).unwrap_err();
        assert_eq!(bad_field(&e), Some(field), "{text}: {e}");
    }

    // postcard: truncated, wrongly typed and trailing bytes.
    for bytes in [
        &[1u8, 5, b'a'][..],
        &[2, 2, 0xff, 0xfe],
        &[6, 0, 0],
        &[4, 9],
        &[3, 1, b'o', 1, 7],
    ] {
        let e = decode_client(PC, bytes).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadMessage, "{bytes:?}: {e}");
    }
}

#[test]
fn null_is_absent_and_unknown_fields_are_ignored() {
    let m = client_json(
        r#"{"type":"sub","id":"s","entity":"T","where":null,"limit":null,"since":null,"count":null,
            "future":{"x":[1,2,{"y":null}]},"ops":"not looked at"}"#,
    )
    .unwrap();
    assert_eq!(
        m,
        ClientMsg::Sub(Sub {
            id: "s".into(),
            entity: "T".into(),
            ..Default::default()
        })
    );

    let m = client_json(r#"{"type":"presence"}"#).unwrap();
    assert_eq!(m, ClientMsg::Presence(Presence { state: Value::Null }));

    let m = decode_server(JSON, br#"{"type":"diff","id":"s","from":1,"seq":2}"#).unwrap();
    assert_eq!(
        m,
        ServerMsg::Diff(Diff {
            id: "s".into(),
            from: 1,
            seq: 2,
            ..Default::default()
        })
    );

    let m = decode_server(
        JSON,
        br#"{"type":"err","code":"SOMETHING_NEW","message":"m"}"#,
    )
    .unwrap();
    let ServerMsg::Err(e) = m else { panic!() };
    assert_eq!(e.code, ErrorCode::Unknown);
}

fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Runs `f` on a thread with a small stack, so unbounded recursion would
/// fail loudly instead of passing thanks to a large default stack.
fn small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn json_nesting_is_bounded() {
    let state = |d: usize| format!(r#"{{"type":"presence","state":{}}}"#, nested(d, "1"));
    assert!(client_json(&state(MAX_VALUE_DEPTH)).is_ok());
    let e = client_json(&state(MAX_VALUE_DEPTH + 1)).unwrap_err();
    assert_eq!(bad_field(&e), Some("state"));
    assert!(e.to_string().contains("nest deeper than 64"), "{e}");

    // A row counts as one level.
    let row = |d: usize| {
        format!(
            r#"{{"type":"mut","op":"o","ops":[{{"type":"insert","entity":"T","row":{{"a":{}}}}}]}}"#,
            nested(d, "")
        )
    };
    assert!(client_json(&row(MAX_VALUE_DEPTH - 1)).is_ok());
    assert_eq!(
        bad_field(&client_json(&row(MAX_VALUE_DEPTH)).unwrap_err()),
        Some("ops[0].row")
    );

    small_stack(|| {
        // A million levels: refused, without recursing.
        let deep = nested(1_000_000, "");
        let e = client_json(&format!(r#"{{"type":"presence","state":{deep}}}"#)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadMessage);
        let e = decode_server(
            JSON,
            format!(r#"{{"type":"snap","id":"s","seq":1,"rows":[{{"a":{deep}}}]}}"#).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadMessage);
        // Skipped (unknown) fields are skipped iteratively: accepted.
        assert!(client_json(&format!(r#"{{"type":"ping","junk":{deep}}}"#)).is_ok());
        // Not an object at all.
        assert_eq!(
            client_json(&deep).unwrap_err().code(),
            ErrorCode::BadMessage
        );
        assert_eq!(
            client_json(&"[".repeat(1_000_000)).unwrap_err().code(),
            ErrorCode::BadMessage
        );
    });
}

/// serde_json refuses more than 127 nested containers by itself; our limit
/// (64) is below it, so its limit never decides.
#[test]
fn serde_json_recursion_limit_is_128() {
    assert!(serde_json::from_str::<serde_json::Value>(&nested(127, "")).is_ok());
    let e = serde_json::from_str::<serde_json::Value>(&nested(128, "")).unwrap_err();
    assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
}

#[test]
fn postcard_nesting_is_bounded() {
    // presence(state = List[List[... Null]]): tag 4, then (5, len 1) per level.
    let frame = |d: usize| {
        let mut f = vec![4u8];
        for _ in 0..d {
            f.extend([5, 1]);
        }
        f.push(0);
        f
    };
    assert!(decode_client(PC, &frame(MAX_VALUE_DEPTH)).is_ok());
    let e = decode_client(PC, &frame(MAX_VALUE_DEPTH + 1)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::BadMessage);
    assert!(e.to_string().contains("nest deeper than 64"), "{e}");

    small_stack(move || {
        let e = decode_client(PC, &frame(500_000)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadMessage);
        // Maps too: (6, len 1, key "") per level.
        let mut f = vec![4u8];
        for _ in 0..500_000 {
            f.extend([6, 1, 0]);
        }
        f.push(0);
        assert_eq!(
            decode_client(PC, &f).unwrap_err().code(),
            ErrorCode::BadMessage
        );
    });
}

#[test]
fn negotiation() {
    let n = |h: Option<&str>| negotiate(h);
    let json_default = Ok(Negotiated {
        encoding: JSON,
        echo: None,
    });
    assert_eq!(n(None), json_default);
    assert_eq!(n(Some("")), json_default);
    assert_eq!(n(Some("bearer.abc")), json_default);
    assert_eq!(n(Some("graphql-ws, bearer.abc")), json_default);
    assert_eq!(
        n(Some("pylon.v1.postcard")),
        Ok(Negotiated {
            encoding: PC,
            echo: Some("pylon.v1.postcard")
        })
    );
    assert_eq!(n(Some("bearer.x,pylon.v1.postcard")).unwrap().encoding, PC);
    assert_eq!(
        n(Some(" bearer.x ,  pylon.v1.json , pylon.v1.postcard"))
            .unwrap()
            .echo,
        Some("pylon.v1.json")
    );
    assert_eq!(n(Some("pylon.v2.json")), Err(UnsupportedProtocol));
    assert_eq!(
        n(Some("pylon.v2.json, pylon.v1.postcard"))
            .unwrap()
            .encoding,
        PC
    );
    assert_eq!(
        n(Some("PYLON.V1.JSON")),
        json_default,
        "subprotocols are case-sensitive"
    );

    assert_eq!(
        bearer_token(Some("pylon.v1.json, bearer.t0k3n")),
        Some("t0k3n")
    );
    assert_eq!(bearer_token(Some("pylon.v1.json, bearer.")), None);
    assert_eq!(bearer_token(None), None);

    for e in Encoding::ALL {
        assert_eq!(Encoding::from_subprotocol(e.subprotocol()), Some(e));
        assert_eq!(Encoding::from_name(e.name()), Some(e));
        assert_eq!(e.subprotocol(), format!("{PROTOCOL}.{}", e.name()));
    }
    assert_eq!(Encoding::default(), JSON);
}

#[test]
fn error_codes_are_stable_upper_snake() {
    let mut names = std::collections::BTreeSet::new();
    for &c in ErrorCode::ALL {
        let s = c.as_str();
        assert!(
            s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
            "{s}"
        );
        assert!(names.insert(s), "duplicate {s}");
        assert_eq!(ErrorCode::parse(s), Some(c));
        assert_eq!(c.to_string(), s);
    }
    for required in [
        "BAD_FRAME",
        "UNKNOWN_TYPE",
        "BAD_MESSAGE",
        "FRAME_TOO_LARGE",
        "UNKNOWN_ENTITY",
        "UNKNOWN_FIELD",
        "TYPE_MISMATCH",
        "REQUIRED_FIELD",
        "UNIQUE_VIOLATION",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "BAD_QUERY",
        "DUPLICATE_SUBSCRIPTION",
        "UNKNOWN_SUBSCRIPTION",
        "TOO_MANY_SUBSCRIPTIONS",
        "RATE_LIMITED",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "INTERNAL",
    ] {
        assert!(names.contains(required), "{required}");
    }
    assert_eq!(ErrorCode::parse("NOPE"), None);
    assert_eq!(ErrorCode::parse_lenient("NOPE"), ErrorCode::Unknown);

    // An unknown code survives postcard as `Unknown` too.
    let mut f = vec![5u8, 4];
    f.extend(b"NOPE");
    f.extend([0, 0, 0]);
    let ServerMsg::Err(e) = decode_server(PC, &f).unwrap() else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Unknown);
}

#[test]
fn json_encoding_is_compact_and_ordered() {
    let text = r#"{"type":"sub","id":"s1","entity":"Todo","where":{"done":false},"limit":20}"#;
    let m = client_json(text).unwrap();
    assert_eq!(encode_client(JSON, &m), Frame::Text(text.into()));

    let d = ServerMsg::Diff(Diff {
        id: "s1".into(),
        from: 3,
        seq: 5,
        removed: vec!["t1".into()],
        ..Default::default()
    });
    assert_eq!(
        encode_server(JSON, &d),
        Frame::Text(r#"{"type":"diff","id":"s1","from":3,"seq":5,"removed":["t1"]}"#.into())
    );
    // Non-finite floats have no JSON form: null.
    let b = ServerMsg::Bcast(Bcast {
        topic: "t".into(),
        data: Value::Float(f64::NAN),
        from: "c".into(),
    });
    assert_eq!(
        encode_server(JSON, &b),
        Frame::Text(r#"{"type":"bcast","topic":"t","data":null,"from":"c"}"#.into())
    );
}
