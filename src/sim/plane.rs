//! The `plane` kind: a small real-time game at 20 Hz. Players move on a
//! square plane; each sees itself and those within [`SIGHT`] of it (its
//! area of interest), so two players far apart do not see each other.
//!
//! * Inputs: `{"steer": {"x": dx, "y": dy}}` (a direction; longer than 1
//!   is cut to 1, so a player moves at most [`SPEED`] units a second) and
//!   `"leave"`. A player appears at a spot of the shard's generator on its
//!   first input, and is dropped after [`AFK_TICKS`] ticks without one.
//! * Snapshot for a subscriber: `{"me": {"x","y"} | null, "others":
//!   [{"id","x","y"}, …], "players": n}`; stats show `players` and
//!   everyone under `others`.
//! * A socket plays as its connection; a named subscriber must be the
//!   verified user (the default hook).
//!
//! ```
//! use pylon_workers::sim::plane::{Plane, Steer};
//! use pylon_workers::sim::{Queued, Sim, SimState};
//! let mut sim = Sim::<Plane>::new("p-1");
//! let steer = |log, who: &str| Queued { log, tick: 1, subscriber: who.into(), seq: 1, at_ms: 0,
//!                                    input: Steer::Steer { x: 1.0, y: 0.0 } };
//! sim.enqueue(steer(1, "c1"));
//! sim.enqueue(steer(2, "c2"));
//! for _ in 0..20 { sim.step(); }
//! let me = sim.state().snapshot_for("c1").me.unwrap();
//! assert!(me.x > 0.0);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::aoi::Grid;
use super::{default_authorize_subscribe, is_connection_id, Now, SimConfig, SimState, Step};
use crate::policy::AuthContext;

/// The plane's side: positions are within `0..SIZE` on both axes.
pub const SIZE: f64 = 100.0;
/// How far a player sees.
pub const SIGHT: f64 = 30.0;
/// Units a second at full steer.
pub const SPEED: f64 = 10.0;
/// Ticks without an input after which a player is dropped (two minutes).
pub const AFK_TICKS: u64 = 20 * 120;

/// One player.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Player {
    pub x: f64,
    pub y: f64,
    dx: f64,
    dy: f64,
    /// The tick of its last input.
    seen: u64,
}

/// The state: every player, by subscriber.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plane {
    players: BTreeMap<String, Player>,
}

/// What a player sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Steer {
    /// Move in this direction (cut to length 1) until told otherwise.
    Steer { x: f64, y: f64 },
    /// Leave the plane.
    Leave,
}

/// A position.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct At {
    pub x: f64,
    pub y: f64,
}

/// Another player in sight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Other {
    pub id: String,
    pub x: f64,
    pub y: f64,
}

/// What a subscriber sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub me: Option<At>,
    pub others: Vec<Other>,
    /// Players on the whole plane.
    pub players: usize,
}

impl Plane {
    pub fn players(&self) -> impl Iterator<Item = (&str, &Player)> {
        self.players.iter().map(|(k, p)| (k.as_str(), p))
    }
}

impl SimState for Plane {
    type Input = Steer;
    type Snapshot = View;
    type Error = String;

    fn config() -> SimConfig {
        SimConfig {
            tick_hz: 20,
            max_subscribers: 64,
            max_queued_inputs: 256,
            idle_ticks: 200,
            max_input_bytes: 256,
            ..SimConfig::new("plane")
        }
    }

    fn new(_name: &str) -> Self {
        Plane::default()
    }

    fn apply_input(&mut self, who: &str, input: Steer, mut now: Now) -> Result<(), String> {
        match input {
            Steer::Leave => {
                self.players.remove(who);
            }
            Steer::Steer { x, y } => {
                if !(x.is_finite() && y.is_finite()) {
                    return Err("steer needs finite numbers".into());
                }
                let len = x.hypot(y);
                let (dx, dy) = if len > 1.0 {
                    (x / len, y / len)
                } else {
                    (x, y)
                };
                let p = self
                    .players
                    .entry(who.to_owned())
                    .or_insert_with(|| Player {
                        x: now.rng.range_f64(0.0, SIZE),
                        y: now.rng.range_f64(0.0, SIZE),
                        dx: 0.0,
                        dy: 0.0,
                        seen: 0,
                    });
                (p.dx, p.dy, p.seen) = (dx, dy, now.tick);
            }
        }
        Ok(())
    }

    fn tick(&mut self, dt: f64, step: Step) {
        self.players
            .retain(|_, p| step.number.saturating_sub(p.seen) < AFK_TICKS);
        for p in self.players.values_mut() {
            p.x = (p.x + p.dx * SPEED * dt).clamp(0.0, SIZE);
            p.y = (p.y + p.dy * SPEED * dt).clamp(0.0, SIZE);
        }
    }

    fn snapshot(&self) -> View {
        View {
            me: None,
            others: self
                .players
                .iter()
                .map(|(id, p)| Other {
                    id: id.clone(),
                    x: p.x,
                    y: p.y,
                })
                .collect(),
            players: self.players.len(),
        }
    }

    fn snapshot_for(&self, who: &str) -> View {
        let Some(me) = self.players.get(who) else {
            return View {
                me: None,
                others: Vec::new(),
                players: self.players.len(),
            };
        };
        // A grid per snapshot is cheap at this size and shows the helper;
        // a larger kind keeps one per tick.
        let mut grid = Grid::new(SIGHT);
        for (id, p) in &self.players {
            grid.insert(id.as_str(), p.x, p.y);
        }
        let others = grid
            .near(me.x, me.y, SIGHT)
            .into_iter()
            .filter(|id| *id != who)
            .map(|id| {
                let p = &self.players[id];
                Other {
                    id: id.to_owned(),
                    x: p.x,
                    y: p.y,
                }
            })
            .collect();
        View {
            me: Some(At { x: me.x, y: me.y }),
            others,
            players: self.players.len(),
        }
    }

    /// A socket plays as its connection; anyone else must be the user.
    fn authorize_subscribe(&self, who: &str, auth: &AuthContext) -> Result<(), String> {
        if is_connection_id(who) {
            Ok(())
        } else {
            default_authorize_subscribe(who, auth)
        }
    }
}
