//! The `counter` kind's contract (docs/sims.md): event-driven, `{"add": n}`
//! in, `{"total", "tick", "acked"}` out, its stats, its refusals, both
//! encodings, and no alarm ever.

mod sim_support;

use pylon_workers::host::Method;
use pylon_workers::protocol::{Encoding, Frame, FrameRef};
use pylon_workers::sim::counter::{Add, Counter, Total};
use pylon_workers::sim::wire::SimServerMsg;
use pylon_workers::sim::SimErrorCode;
use serde_json::json;
use sim_support::*;

#[test]
fn inputs_tick_once_each_and_every_subscriber_sees_its_own_acked_seq() {
    let (mut h, _) = host::<Counter>("votes");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Json).unwrap();
    let hello = json_frames(&mut h, &a);
    assert_eq!(
        hello,
        vec![
            json!({"type": "sim_welcome", "protocol": "pylon.sim.v1", "sim": "votes",
                   "kind": "counter", "conn": a, "subscriber": a, "tick": 0, "acked": 0,
                   "tick_hz": 0, "encoding": "json"}),
            json!({"type": "sim_snapshot", "tick": 0, "acked": 0, "total": 0}),
        ]
    );
    json_frames(&mut h, &b);

    h.message(
        &a,
        FrameRef::Text(r#"{"type":"sim_input","seq":1,"input":{"add":5}}"#),
    )
    .unwrap();
    assert_eq!(
        json_frames(&mut h, &a),
        vec![
            json!({"type": "sim_ack", "seq": 1, "tick": 1}),
            json!({"type": "sim_snapshot", "tick": 1, "acked": 1, "total": 5}),
        ]
    );
    assert_eq!(
        json_frames(&mut h, &b),
        vec![json!({"type": "sim_snapshot", "tick": 1, "acked": 0, "total": 5})]
    );

    send(&mut h, &b, Encoding::Json, 7, Add::new(10).unwrap());
    assert_eq!(
        json_frames(&mut h, &a),
        vec![json!({"type": "sim_snapshot", "tick": 2, "acked": 1, "total": 15})]
    );
    assert_eq!(
        json_frames(&mut h, &b)[1],
        json!({"type": "sim_snapshot", "tick": 2, "acked": 7, "total": 15})
    );
    assert_eq!(h.alarm(), None, "an event-driven kind sets no alarm");
}

#[test]
fn http_inputs_and_the_stats() {
    let (mut h, _) = host::<Counter>("c-http");
    let a = h.connect(Encoding::Json).unwrap();
    json_frames(&mut h, &a);
    let r = post(&mut h, json!({"add": 7}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"subscriber": "http", "seq": 1, "tick": 1, "dup": false, "acked": 1,
               "snapshot": {"total": 7}})
    );
    assert_eq!(
        json_frames(&mut h, &a),
        vec![json!({"type": "sim_snapshot", "tick": 1, "acked": 0, "total": 7})]
    );
    let r = post(&mut h, json!({"add": 1000}));
    assert_eq!(
        (r.body["seq"].as_u64(), r.body["tick"].as_u64()),
        (Some(2), Some(2))
    );

    let s = stats(&mut h);
    for (k, v) in [
        ("total", json!(1007)),
        ("tick", json!(2)),
        ("subscribers", json!(1)),
        ("inputs_applied", json!(2)),
        ("wakes", json!(1)),
        ("alarm_pending", json!(false)),
        ("kind", json!("counter")),
        ("finished", json!(false)),
    ] {
        assert_eq!(s[k], v, "{k} in {s}");
    }
    // The host's own stats route shows the same figures.
    assert_eq!(h.stats()["total"], 1007);
    assert_eq!(h.alarm(), None);
}

#[test]
fn anything_but_an_add_from_1_to_1000_is_refused_with_a_typed_error() {
    let (mut h, _) = host::<Counter>("c-bad");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Json).unwrap();
    json_frames(&mut h, &a);
    json_frames(&mut h, &b);
    let bad_inputs = [
        json!({"add": 0}),
        json!({"add": 1001}),
        json!({"add": -3}),
        json!({"add": 2.5}),
        json!({"add": "5"}),
        json!({"add": 1, "by": 2}),
        json!({"sub": 1}),
        json!("add"),
        json!(null),
    ];
    for (i, input) in bad_inputs.iter().enumerate() {
        let text = json!({"type": "sim_input", "seq": i + 1, "input": input}).to_string();
        h.message(&a, FrameRef::Text(&text)).unwrap();
        let got = received::<Counter, Total>(&mut h, &a);
        assert_eq!(errors(&got).len(), 1, "{input}: {got:?}");
        assert_eq!(errors(&got)[0].code, SimErrorCode::BadInput, "{input}");
        let r = post(&mut h, input.clone());
        assert_eq!(r.status, 400, "{input}: {}", r.body);
        assert_eq!(r.body["error"]["code"], "BAD_INPUT");
    }
    // Frames that are not messages at all.
    let frames: [(FrameRef<'_>, SimErrorCode); 4] = [
        (FrameRef::Text("{"), SimErrorCode::BadFrame),
        (FrameRef::Binary(&[0, 1]), SimErrorCode::BadFrame),
        (
            FrameRef::Text(r#"{"type":"sub","id":"s1"}"#),
            SimErrorCode::UnknownType,
        ),
        (
            FrameRef::Text(r#"{"type":"sim_input","input":{"add":1}}"#),
            SimErrorCode::BadInput,
        ),
    ];
    for (frame, code) in frames {
        h.message(&a, frame).unwrap();
        let got = received::<Counter, Total>(&mut h, &a);
        assert_eq!(errors(&got)[0].code, code, "{frame:?}");
    }
    let huge = format!(
        r#"{{"type":"sim_input","seq":1,"input":{{"add":1}},"pad":"{}"}}"#,
        "x".repeat(20_000)
    );
    h.message(&a, FrameRef::Text(&huge)).unwrap();
    assert_eq!(
        errors(&received::<Counter, Total>(&mut h, &a))[0].code,
        SimErrorCode::InputTooLarge
    );
    let r = h
        .request(
            Method::Post,
            "",
            json!({"add": 1, "pad": "x".repeat(20_000)}),
        )
        .unwrap();
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (413, Some("INPUT_TOO_LARGE"))
    );

    assert!(h.take_sent(&b).is_empty(), "nothing reached the others");
    let s = stats(&mut h);
    assert_eq!(
        (s["tick"].as_u64(), s["total"].as_i64()),
        (Some(0), Some(0))
    );
    assert_eq!(s["inputs_logged"], 0, "refused inputs are not logged");
    assert_eq!(s["inputs_refused"], 2 * bad_inputs.len() + 4 + 2);

    // The socket stays usable.
    send(&mut h, &a, Encoding::Json, 1, Add::new(3).unwrap());
    assert_eq!(acks(&received::<Counter, Total>(&mut h, &a)).len(), 1);
    assert_eq!(stats(&mut h)["total"], 3);
}

#[test]
fn postcard_sockets_and_duplicates() {
    let (mut h, _) = host::<Counter>("c-pc");
    let p = h.connect(Encoding::Postcard).unwrap();
    let j = h.connect(Encoding::Json).unwrap();
    let hello = h.take_sent(&p);
    assert!(hello.iter().all(|f| matches!(f, Frame::Binary(_))));
    json_frames(&mut h, &j);

    send(&mut h, &p, Encoding::Postcard, 1, Add::new(4).unwrap());
    let got = received::<Counter, Total>(&mut h, &p);
    assert_eq!(acks(&got)[0].seq, 1);
    let snaps = snapshots(&got);
    assert_eq!(
        (snaps[0].tick, snaps[0].acked, snaps[0].snapshot),
        (1, 1, Total { total: 4 })
    );

    // A resend of a seq already taken is acknowledged as a duplicate and
    // not applied again; so is an older one.
    for seq in [1, 1] {
        send(&mut h, &p, Encoding::Postcard, seq, Add::new(4).unwrap());
        let got = received::<Counter, Total>(&mut h, &p);
        assert!(
            matches!(&got[..], [SimServerMsg::Ack(a)] if a.dup && a.seq == seq),
            "{got:?}"
        );
    }
    send(&mut h, &p, Encoding::Postcard, 5, Add::new(1).unwrap());
    send(&mut h, &p, Encoding::Postcard, 3, Add::new(1).unwrap());
    let got = received::<Counter, Total>(&mut h, &p);
    let a = acks(&got);
    assert_eq!((a[0].dup, a[1].dup), (false, true));
    assert_eq!(stats(&mut h)["total"], 5);
    assert_eq!(
        json_frames(&mut h, &j).last().unwrap(),
        &json!({"type": "sim_snapshot", "tick": 2, "acked": 0, "total": 5})
    );

    // Seq 0 is not a seq.
    send(&mut h, &p, Encoding::Postcard, 0, Add::new(1).unwrap());
    let e = errors(&received::<Counter, Total>(&mut h, &p));
    assert_eq!((e[0].code, e[0].seq), (SimErrorCode::BadInput, Some(0)));
}

#[test]
fn the_state_survives_eviction_and_the_routes_are_checked() {
    let (mut h, _) = host::<Counter>("c-evict");
    for n in 1..=150 {
        assert_eq!(post(&mut h, json!({"add": n % 10 + 1})).status, 200);
    }
    let before = stats(&mut h);
    h.evict();
    let after = stats(&mut h);
    for k in ["total", "tick", "inputs_applied", "inputs_logged"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["wakes"], 2);
    assert_eq!(after["persisted_tick"], 100, "persisted every 100 ticks");
    // The next input continues the numbering.
    let r = post(&mut h, json!({"add": 1}));
    assert_eq!(
        (r.body["seq"].as_u64(), r.body["tick"].as_u64()),
        (Some(151), Some(151))
    );

    let status =
        |h: &mut Host<Counter>, m, rest: &str| h.request(m, rest, json!(null)).unwrap().status;
    assert_eq!(status(&mut h, Method::Get, "ws"), 426);
    assert_eq!(status(&mut h, Method::Delete, ""), 405);
    assert_eq!(status(&mut h, Method::Post, "replay"), 405);
    assert_eq!(status(&mut h, Method::Get, "nope"), 404);
    assert_eq!(h.alarm(), None);
}
