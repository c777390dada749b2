//! A real-time kind (`Arena`, 20 Hz) on a local host with a virtual
//! clock: the tick rate, inputs in arrival order before each tick, the
//! bounded catch-up of a late wake, per-subscriber snapshots, the
//! authorize hooks, the idle stop (no alarm), finishing, and every kind
//! of refusal leaving the others' ticks alone. With the board's `plane`:
//! a deployment's tick rate (`PYLON_SIM_TICK_HZ_PLANE`), and the host's
//! count of alarms and rows written (none while idle).

mod sim_support;

use pylon_workers::host::{Method, OpenError};
use pylon_workers::policy::AuthContext;
use pylon_workers::protocol::{Encoding, FrameRef};
use pylon_workers::sim::plane::{self, Plane, Steer};
use pylon_workers::sim::wire::{close as sim_close, SimServerMsg};
use pylon_workers::sim::{replay, ReplayLog, SimErrorCode, SimState, TICK_TIMER};
use pylon_workers::sql::SqlValue;
use pylon_workers::storage::SqlConn;
use serde_json::json;
use sim_support::*;

type A = Arena;

fn ticks_seen(msgs: &[SimServerMsg<View>]) -> Vec<u64> {
    snapshots(msgs).iter().map(|s| s.tick).collect()
}

#[test]
fn ticks_come_at_the_configured_rate_while_someone_watches() {
    let (mut h, _) = host::<A>("rate");
    assert_eq!(h.alarm(), None, "a new shard waits for someone");
    let a = h.connect(Encoding::Json).unwrap();
    assert_eq!(h.alarm(), Some(50));
    assert_eq!(ticks_seen(&received::<A, View>(&mut h, &a)), [0]);
    h.advance(1_000).unwrap();
    let seen = ticks_seen(&received::<A, View>(&mut h, &a));
    assert_eq!(seen, (1..=20).collect::<Vec<_>>(), "one snapshot per tick");
    assert_eq!(h.object().unwrap().state().ticks, 20);
    h.advance(9_000).unwrap();
    assert_eq!(stats(&mut h)["tick"], 200, "20 Hz for 10 s");
    assert_eq!(stats(&mut h)["ticks_skipped"], 0);
    assert_eq!(h.alarm(), Some(10_050));
}

#[test]
fn inputs_are_applied_in_arrival_order_right_before_the_next_tick() {
    let (mut h, _) = host::<A>("fifo");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Postcard).unwrap();
    h.advance(50).unwrap();
    received::<A, View>(&mut h, &a);
    received::<A, View>(&mut h, &b);
    send(&mut h, &a, Encoding::Json, 1, Cmd::Mark(10));
    send(&mut h, &b, Encoding::Postcard, 1, Cmd::Mark(20));
    send(&mut h, &a, Encoding::Json, 2, Cmd::Mark(11));
    h.advance(10).unwrap();
    send(&mut h, &b, Encoding::Postcard, 2, Cmd::Mark(21));
    // Acknowledged at once (logged), for the next tick; not applied yet.
    let got = received::<A, View>(&mut h, &a);
    assert_eq!(
        acks(&got)
            .iter()
            .map(|x| (x.seq, x.tick))
            .collect::<Vec<_>>(),
        [(1, 2), (2, 2)]
    );
    assert!(snapshots(&got).is_empty());
    assert!(h.object().unwrap().state().marks.is_empty());
    h.advance(40).unwrap();
    let marks = &h.object().unwrap().state().marks;
    let (ca, cb) = (a.as_str(), b.as_str());
    assert_eq!(
        marks,
        &[
            (ca.to_owned(), 10, 2),
            (cb.to_owned(), 20, 2),
            (ca.to_owned(), 11, 2),
            (cb.to_owned(), 21, 2)
        ]
    );
    let sa = snapshots(&received::<A, View>(&mut h, &a));
    let sb = snapshots(&received::<A, View>(&mut h, &b));
    assert_eq!((sa[0].tick, sa[0].acked, sa[0].snapshot.marks), (2, 2, 4));
    assert_eq!((sb[0].tick, sb[0].acked), (2, 2));
}

#[test]
fn a_late_wake_runs_a_bounded_number_of_ticks_and_counts_the_rest() {
    let (mut h, db) = host::<A>("late");
    let a = h.connect(Encoding::Json).unwrap();
    h.advance(350).unwrap();
    let s = stats(&mut h);
    assert_eq!(
        (s["tick"].as_u64(), s["persisted_tick"].as_u64()),
        (Some(7), Some(7))
    );
    received::<A, View>(&mut h, &a);
    // The platform wakes the object a second late. (The local host is
    // punctual, so the stored timer is moved a second back instead, and
    // the object rebuilt, as after a wake.)
    db.exec(
        "UPDATE _pylon_timer_slots SET at_ms = at_ms - 1000 WHERE name = ?1",
        &[SqlValue::Text(TICK_TIMER.into())],
    )
    .unwrap();
    h.evict();
    h.advance(50).unwrap();
    // Due: the 20 slots of the late second and the punctual one; it
    // resumes from the persisted tick 7 and runs 3 of them.
    let s = stats(&mut h);
    assert_eq!(
        (s["tick"].as_u64(), s["ticks_skipped"].as_u64()),
        (Some(10), Some(18))
    );
    assert_eq!(
        ticks_seen(&received::<A, View>(&mut h, &a)),
        [10],
        "one snapshot after the catch-up, not one per tick"
    );
    // And the rate goes on from there.
    h.advance(500).unwrap();
    assert_eq!(stats(&mut h)["tick"], 20);
}

#[test]
fn each_subscriber_sees_its_own_area_of_interest() {
    let (mut h, _) = host::<A>("aoi");
    let conns: Vec<String> = (0..3).map(|_| h.connect(Encoding::Json).unwrap()).collect();
    for (i, c) in conns.iter().enumerate() {
        send(&mut h, c, Encoding::Json, 1, Cmd::Join);
        let far = if i == 2 { 50 } else { 3 * i as i64 };
        send(&mut h, c, Encoding::Json, 2, Cmd::Move { dx: far, dy: 0 });
        h.advance(50).unwrap();
    }
    for c in &conns {
        received::<A, View>(&mut h, c);
    }
    h.advance(50).unwrap();
    let view = |h: &mut Host<A>, c: &str| snapshots(&received::<A, View>(h, c)).remove(0);
    let v0 = view(&mut h, &conns[0]);
    assert_eq!(v0.snapshot.me, Some((0, 0)));
    assert_eq!(v0.snapshot.near, [conns[1].clone()]);
    assert_eq!(v0.acked, 2);
    let v2 = view(&mut h, &conns[2]);
    assert_eq!((v2.snapshot.me, v2.snapshot.near.len()), (Some((50, 0)), 0));
    // Everyone's view over HTTP: the kind's snapshot().
    assert_eq!(stats(&mut h)["near"].as_array().unwrap().len(), 3);
}

#[test]
fn the_authorize_hooks_decide_who_subscribes_and_what_they_send() {
    let (mut h, _) = host::<A>("auth");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Json).unwrap();
    received::<A, View>(&mut h, &a);
    received::<A, View>(&mut h, &b);
    send(&mut h, &a, Encoding::Json, 1, Cmd::Spam);
    let e = errors(&received::<A, View>(&mut h, &a));
    assert_eq!(
        (e[0].code, e[0].seq, e[0].reason.as_deref()),
        (SimErrorCode::Forbidden, Some(1), Some("no spam here"))
    );
    // HTTP inputs act as the verified user, or as `http` when anonymous.
    let r = h
        .request_as(Method::Post, "", cmd(&Cmd::Join), AuthContext::user("bob"))
        .unwrap();
    assert_eq!(
        (r.status, r.body["subscriber"].as_str()),
        (200, Some("bob"))
    );
    let r = post(&mut h, cmd(&Cmd::Spam));
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"]["reason"], "no spam here");
    h.advance(50).unwrap();
    assert!(h.object().unwrap().state().players.contains_key("bob"));
    // Not logged, and the others' ticks went on.
    assert_eq!(stats(&mut h)["inputs_logged"], 1);
    assert_eq!(ticks_seen(&received::<A, View>(&mut h, &b)), [1]);
}

#[test]
fn refusals_of_every_kind_leave_the_others_ticking() {
    let (mut h, _) = host::<A>("refusals");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Json).unwrap();
    let c = h.connect(Encoding::Json).unwrap();
    // Full shard: the fourth socket is refused (503 SIM_FULL).
    let refused = h.connect(Encoding::Json).unwrap_err();
    assert_eq!(
        (refused.status, refused.body["error"]["code"].as_str()),
        (503, Some("SIM_FULL"))
    );
    for conn in [&a, &b, &c] {
        received::<A, View>(&mut h, conn);
    }
    let expect = |h: &mut Host<A>, code: SimErrorCode| {
        let e = errors(&received::<A, View>(h, &a));
        assert_eq!(e.len(), 1, "{code:?}: {e:?}");
        assert_eq!(e[0].code, code);
    };
    h.message(&a, FrameRef::Text("not json")).unwrap();
    expect(&mut h, SimErrorCode::BadFrame);
    h.message(
        &a,
        FrameRef::Text(r#"{"type":"sim_input","seq":1,"input":{"Fly":1}}"#),
    )
    .unwrap();
    expect(&mut h, SimErrorCode::BadInput);
    let big = format!(
        r#"{{"type":"sim_input","seq":1,"input":"Join","x":"{}"}}"#,
        "y".repeat(300)
    );
    h.message(&a, FrameRef::Text(&big)).unwrap();
    expect(&mut h, SimErrorCode::InputTooLarge);
    // Full queue: four inputs wait for the tick at most.
    for seq in 1..=4 {
        send(&mut h, &a, Encoding::Json, seq, Cmd::Mark(seq));
    }
    assert_eq!(acks(&received::<A, View>(&mut h, &a)).len(), 4);
    send(&mut h, &a, Encoding::Json, 5, Cmd::Mark(5));
    expect(&mut h, SimErrorCode::QueueFull);
    let r = post(&mut h, mark(9));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (429, Some("QUEUE_FULL"))
    );
    h.advance(50).unwrap();
    // The state refuses one: acknowledged (it is logged), then refused at
    // its tick, counted, and the simulation goes on.
    send(&mut h, &a, Encoding::Json, 5, Cmd::Fail);
    send(&mut h, &a, Encoding::Json, 6, Cmd::Mark(6));
    received::<A, View>(&mut h, &a);
    h.advance(50).unwrap();
    let got = received::<A, View>(&mut h, &a);
    let e = errors(&got);
    assert_eq!(
        (e[0].code, e[0].seq, e[0].reason.as_deref()),
        (
            SimErrorCode::InputRejected,
            Some(5),
            Some("fail was asked for")
        )
    );
    assert_eq!(
        snapshots(&got)[0].acked,
        6,
        "the refused input counts as processed"
    );
    let s = stats(&mut h);
    assert_eq!(
        (s["inputs_rejected"].as_u64(), s["inputs_applied"].as_u64()),
        (Some(1), Some(5))
    );
    assert_eq!(s["marks"], 5);
    // b and c saw every tick, untouched by a's troubles.
    for conn in [&b, &c] {
        let got = received::<A, View>(&mut h, conn);
        assert!(errors(&got).is_empty());
        assert_eq!(ticks_seen(&got), [1, 2]);
    }
}

#[test]
fn an_idle_shard_stops_ticking_and_has_no_alarm() {
    let (mut h, _) = host::<A>("idle");
    assert_eq!(post(&mut h, mark(1)).status, 200);
    assert_eq!(h.alarm(), Some(50), "an input starts the ticks");
    // Tick 1 applies it; ten idle ticks later (no input, no subscriber)
    // the shard stops.
    h.advance(2_000).unwrap();
    let s = stats(&mut h);
    assert_eq!(
        (s["tick"].as_u64(), s["ticking"].as_bool()),
        (Some(11), Some(false))
    );
    assert_eq!(
        (s["alarm_pending"].as_bool(), h.alarm()),
        (Some(false), None)
    );
    assert_eq!(s["persisted_tick"], 11, "persisted as it stopped");
    // An hour of nothing: no wake, no tick.
    let wakes = h.wakes();
    h.advance(3_600_000).unwrap();
    assert_eq!(
        (h.wakes(), stats(&mut h)["tick"].as_u64()),
        (wakes, Some(11))
    );

    // A subscriber keeps it ticking however long it is quiet.
    let a = h.connect(Encoding::Json).unwrap();
    let t0 = h.now_ms();
    assert_eq!(h.alarm(), Some(t0 + 50));
    h.advance(5_000).unwrap();
    assert_eq!(stats(&mut h)["tick"], 111);
    h.close(&a).unwrap();
    h.advance(5_000).unwrap();
    assert_eq!(
        (stats(&mut h)["tick"].as_u64(), h.alarm()),
        (Some(121), None)
    );

    // Evicted while idle, it wakes to the same state.
    h.evict();
    assert_eq!(stats(&mut h)["marks"], 1);
    assert_eq!(h.alarm(), None);
}

#[test]
fn a_finished_simulation_says_goodbye_and_stays_readable() {
    let (mut h, _) = host::<A>("finish");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Postcard).unwrap();
    send(&mut h, &a, Encoding::Json, 1, Cmd::Join);
    send(&mut h, &a, Encoding::Json, 2, Cmd::Finish);
    received::<A, View>(&mut h, &a);
    received::<A, View>(&mut h, &b);
    h.advance(50).unwrap();
    for conn in [&a, &b] {
        let got = snapshots(&received::<A, View>(&mut h, conn));
        assert_eq!(got.len(), 1);
        assert!(got[0].is_final, "the final snapshot");
        assert_eq!(got[0].tick, 1);
        let closed = h.socket(conn).unwrap().closed.clone();
        assert_eq!(closed.map(|c| c.0), Some(sim_close::FINISHED));
    }
    assert_eq!(h.alarm(), None, "no ticks after the end");
    // The final frame in JSON says so.
    let j = h.connect(Encoding::Json).unwrap_err();
    assert_eq!(
        (j.status, j.body["error"]["code"].as_str()),
        (410, Some("SIM_FINISHED"))
    );
    let r = post(&mut h, cmd(&Cmd::Join));
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (410, Some("SIM_FINISHED"))
    );
    h.advance(60_000).unwrap();
    h.evict();
    let s = stats(&mut h);
    assert_eq!(
        (s["finished"].as_bool(), s["tick"].as_u64()),
        (Some(true), Some(1))
    );
    assert_eq!(s["near"], json!([a]), "the final state is readable");
    assert_eq!(h.alarm(), None);
    assert_eq!(h.connect(Encoding::Json).unwrap_err().status, 410);
}

#[test]
fn the_final_snapshot_is_marked_in_json() {
    let (mut h, _) = host::<A>("finish-json");
    let a = h.connect(Encoding::Json).unwrap();
    json_frames(&mut h, &a);
    send(&mut h, &a, Encoding::Json, 1, Cmd::Finish);
    h.advance(50).unwrap();
    let frames = json_frames(&mut h, &a);
    assert_eq!(
        frames.last().unwrap(),
        &json!({"type": "sim_snapshot", "tick": 1, "acked": 1, "final": true,
                "me": null, "near": [], "marks": 0})
    );
    assert_eq!(h.socket(&a).unwrap().closed.as_ref().unwrap().0, 4410);
}

/// The x of `who` on a plane, from its stats.
fn plane_x(h: &mut Host<Plane>, who: &str) -> f64 {
    let s = stats(h);
    let others = s["others"].as_array().cloned().unwrap_or_default();
    let me = others.iter().find(|p| p["id"] == who);
    me.and_then(|p| p["x"].as_f64())
        .unwrap_or_else(|| panic!("{who} is not on the plane: {s}"))
}

#[test]
fn a_deployment_setting_sets_a_kinds_tick_rate_and_its_dt() {
    let (mut h, _) = host::<Plane>("fast");
    h.var("PYLON_SIM_TICK_HZ_PLANE", "60");
    h.evict(); // read when the shard opens
    let a = h.connect(Encoding::Json).unwrap();
    let first = received::<Plane, plane::View>(&mut h, &a);
    assert!(
        matches!(&first[0], SimServerMsg::Welcome(w) if w.tick_hz == 60),
        "{first:?}"
    );
    h.advance(1_000).unwrap();
    let s = stats(&mut h);
    assert_eq!(
        (
            s["tick_hz"].as_u64(),
            s["tick"].as_u64(),
            s["ticks_skipped"].as_u64()
        ),
        (Some(60), Some(60), Some(0))
    );
    assert_eq!(h.stats()["this_wake"]["alarms_fired"], 60);

    // Each tick covers 1/60 s: a second at full steer is SPEED units (at
    // the compiled 20 Hz's dt it would be three times that).
    send(
        &mut h,
        &a,
        Encoding::Json,
        1,
        Steer::Steer { x: 0.0, y: 0.0 },
    );
    h.advance(17).unwrap();
    let x0 = plane_x(&mut h, &a);
    let dir = if x0 < plane::SIZE / 2.0 { 1.0 } else { -1.0 };
    send(
        &mut h,
        &a,
        Encoding::Json,
        2,
        Steer::Steer { x: dir, y: 0.0 },
    );
    h.advance(1_000).unwrap();
    let moved = (plane_x(&mut h, &a) - x0).abs();
    assert!((moved - plane::SPEED).abs() < 1e-6, "moved {moved}");

    // The input log says the rate it ran at, and replays to the same state.
    let r = h.request(Method::Get, "replay", json!(null)).unwrap();
    let log: ReplayLog<Steer> = serde_json::from_value(r.body).unwrap();
    assert_eq!(log.tick_hz, 60);
    let replayed = replay(Plane::new("fast"), log).unwrap();
    assert_eq!(replayed.state(), h.object().unwrap().state());
}

#[test]
fn a_bad_tick_rate_setting_keeps_the_shard_from_opening() {
    let (mut h, _) = host::<Plane>("misset");
    for bad in ["1001", "fast", "-5", "20.5", ""] {
        h.var("PYLON_SIM_TICK_HZ_PLANE", bad);
        h.evict();
        let e = h.request(Method::Get, "", json!(null)).unwrap_err();
        assert!(
            matches!(&e, OpenError::Config(m)
                if m.contains("PYLON_SIM_TICK_HZ_PLANE") && m.contains(&format!("`{bad}`"))),
            "{bad}: {e}"
        );
    }
    h.var("PYLON_SIM_TICK_HZ_PLANE", "0");
    assert_eq!(stats(&mut h)["tick_hz"], 0, "0 (event-driven) is a rate");
}

#[test]
fn the_host_counts_a_wakes_alarms_and_rows_and_an_idle_shard_adds_none() {
    let (mut h, _) = host::<Plane>("bill");
    let a = h.connect(Encoding::Postcard).unwrap();
    h.advance(10_000).unwrap();
    let w = h.stats()["this_wake"].clone();
    assert_eq!(w["alarms_fired"], 200, "{w}");
    assert_eq!(
        w["alarms_set"], 201,
        "one as ticking started, one per tick: {w}"
    );
    // Each tick sets its timer again: one row, the timer's slot updated
    // in place (it was a delete and an insert, 406 here); the state is
    // persisted every 100 ticks; opening and the socket add a few.
    let rows = w["sql"]["rows_written"].as_u64().unwrap();
    assert!((200..220).contains(&rows), "{w}");

    // Alone, it stops ticking after its idle ticks; then an hour costs
    // nothing: no alarm, no wake, no row.
    h.close(&a).unwrap();
    h.advance(15_000).unwrap();
    assert_eq!(h.alarm(), None);
    let (wakes, before) = (h.wakes(), h.stats()["this_wake"].clone());
    h.advance(3_600_000).unwrap();
    let after = h.stats()["this_wake"].clone();
    assert_eq!(h.wakes(), wakes);
    for k in ["alarms_fired", "alarms_set"] {
        assert_eq!(after[k], before[k], "{k}: {before} -> {after}");
    }
    assert_eq!(
        after["sql"]["rows_written"], before["sql"]["rows_written"],
        "{before} -> {after}"
    );

    // The count is per wake.
    h.evict();
    stats(&mut h);
    let w = h.stats()["this_wake"].clone();
    assert_eq!(
        (w["alarms_fired"].as_u64(), w["opened_ms"].as_i64()),
        (Some(0), Some(h.now_ms()))
    );
}
