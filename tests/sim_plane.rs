//! The `plane` kind (20 Hz, movement, area of interest): players appear on
//! their first input, move as they steer, see exactly those within sight,
//! leave or are dropped when away, and a replay reproduces the floats.

mod sim_support;

use pylon_workers::host::Method;
use pylon_workers::protocol::Encoding;
use pylon_workers::sim::plane::{Plane, Steer, View, SIGHT, SPEED};
use pylon_workers::sim::{replay, ReplayLog, SimErrorCode, SimState};
use serde_json::json;
use sim_support::*;

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

fn pos(h: &Host<Plane>, who: &str) -> (f64, f64) {
    let (_, p) = h
        .object()
        .unwrap()
        .state()
        .players()
        .find(|(id, _)| *id == who)
        .unwrap();
    (p.x, p.y)
}

#[test]
fn two_players_steer_towards_each_other_and_see_each_other_move() {
    let (mut h, _) = host::<Plane>("meadow");
    let a = h.connect(Encoding::Json).unwrap();
    let b = h.connect(Encoding::Postcard).unwrap();
    send(
        &mut h,
        &a,
        Encoding::Json,
        1,
        Steer::Steer { x: 0.0, y: 0.0 },
    );
    send(
        &mut h,
        &b,
        Encoding::Postcard,
        1,
        Steer::Steer { x: 0.0, y: 0.0 },
    );
    h.advance(50).unwrap();
    let (pa, pb) = (pos(&h, &a), pos(&h, &b));
    // Head for each other at full speed.
    let (dx, dy) = (pb.0 - pa.0, pb.1 - pa.1);
    send(&mut h, &a, Encoding::Json, 2, Steer::Steer { x: dx, y: dy });
    send(
        &mut h,
        &b,
        Encoding::Postcard,
        2,
        Steer::Steer { x: -dx, y: -dy },
    );
    let mut met = false;
    for _ in 0..400 {
        received::<Plane, View>(&mut h, &a);
        received::<Plane, View>(&mut h, &b);
        h.advance(50).unwrap();
        let va = snapshots(&received::<Plane, View>(&mut h, &a))
            .remove(0)
            .snapshot;
        let vb = snapshots(&received::<Plane, View>(&mut h, &b))
            .remove(0)
            .snapshot;
        let (pa, pb) = (pos(&h, &a), pos(&h, &b));
        let me = va.me.unwrap();
        assert_eq!((me.x, me.y), pa);
        // Each sees the other exactly when within sight, where it is.
        let close = dist(pa, pb) <= SIGHT;
        assert_eq!(va.others.len(), usize::from(close));
        assert_eq!(vb.others.len(), usize::from(close));
        if close {
            assert_eq!(
                (va.others[0].id.as_str(), va.others[0].x, va.others[0].y),
                (b.as_str(), pb.0, pb.1)
            );
            met = true;
            break;
        }
    }
    assert!(met, "they met");
    // b stops; a keeps going, and b sees it move.
    send(
        &mut h,
        &b,
        Encoding::Postcard,
        3,
        Steer::Steer { x: 0.0, y: 0.0 },
    );
    h.advance(50).unwrap();
    received::<Plane, View>(&mut h, &b);
    h.advance(50).unwrap();
    let before = snapshots(&received::<Plane, View>(&mut h, &b))
        .remove(0)
        .snapshot;
    h.advance(50).unwrap();
    let after = snapshots(&received::<Plane, View>(&mut h, &b))
        .remove(0)
        .snapshot;
    let (o1, o2) = (&before.others[0], &after.others[0]);
    let moved = dist((o1.x, o1.y), (o2.x, o2.y));
    assert!(moved > 0.0 && moved <= SPEED * 0.05 + 1e-9, "moved {moved}");
}

#[test]
fn players_leave_or_are_dropped_when_away_and_bad_steers_are_refused() {
    let (mut h, _) = host::<Plane>("field");
    let a = h.connect(Encoding::Postcard).unwrap();
    let b = h.connect(Encoding::Json).unwrap();
    send(
        &mut h,
        &a,
        Encoding::Postcard,
        1,
        Steer::Steer { x: 1.0, y: 1.0 },
    );
    send(
        &mut h,
        &b,
        Encoding::Json,
        1,
        Steer::Steer { x: 0.0, y: 1.0 },
    );
    h.advance(50).unwrap();
    assert_eq!(stats(&mut h)["players"], 2);
    // Not a number: postcard carries it, the state refuses it.
    send(
        &mut h,
        &a,
        Encoding::Postcard,
        2,
        Steer::Steer {
            x: f64::NAN,
            y: 0.0,
        },
    );
    h.advance(50).unwrap();
    let e = errors(&received::<Plane, View>(&mut h, &a));
    assert_eq!(
        (e[0].code, e[0].seq),
        (SimErrorCode::InputRejected, Some(2))
    );
    send(&mut h, &b, Encoding::Json, 2, Steer::Leave);
    h.advance(50).unwrap();
    let s = stats(&mut h);
    assert_eq!(
        (s["players"].as_u64(), s["others"][0]["id"].as_str()),
        (Some(1), Some(a.as_str()))
    );
    // Two minutes without an input: dropped (the socket keeps it ticking).
    h.advance(121_000).unwrap();
    assert_eq!(stats(&mut h)["players"], 0);
    assert!(h.alarm().is_some());
    // Alone and quiet, it rests.
    h.close(&a).unwrap();
    h.close(&b).unwrap();
    h.advance(11_000).unwrap();
    assert_eq!(h.alarm(), None);
}

#[test]
fn a_named_subscriber_plays_as_its_user_over_http() {
    let (mut h, _) = host::<Plane>("http");
    let steer = serde_json::to_value(Steer::Steer { x: 0.5, y: 0.0 }).unwrap();
    assert_eq!(steer, json!({"steer": {"x": 0.5, "y": 0.0}}));
    let r = post(&mut h, steer.clone());
    assert_eq!(r.status, 403, "anonymous HTTP is not a player");
    let r = h
        .request_as(
            Method::Post,
            "",
            steer,
            pylon_workers::policy::AuthContext::user("ann"),
        )
        .unwrap();
    assert_eq!(r.status, 200);
    h.advance(1_000).unwrap();
    assert_eq!(stats(&mut h)["others"][0]["id"], "ann");
}

#[test]
fn the_replay_reproduces_every_position() {
    let (mut h, _) = host::<Plane>("replayed");
    let conns: Vec<String> = (0..3).map(|_| h.connect(Encoding::Json).unwrap()).collect();
    let mut rng = pylon_workers::sim::SimRng::new(5);
    for round in 1..=60u64 {
        let c = &conns[rng.below(3) as usize];
        let steer = Steer::Steer {
            x: rng.range_f64(-2.0, 2.0),
            y: rng.range_f64(-2.0, 2.0),
        };
        send(&mut h, c, Encoding::Json, round, steer);
        h.advance(rng.below(200) as i64).unwrap();
        if round % 17 == 0 {
            h.evict();
        }
    }
    let r = h.request(Method::Get, "replay", json!(null)).unwrap();
    let log: ReplayLog<Steer> = serde_json::from_value(r.body).unwrap();
    let replayed = replay(Plane::new("replayed"), log).unwrap();
    assert_eq!(replayed.state(), h.object().unwrap().state());
}
