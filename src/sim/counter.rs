//! The `counter` kind: event-driven (it ticks once per input), a sum of
//! adds. The tests and docs use it (docs/sims.md, "The counter").
//!
//! * Input: `{"add": n}` with `n` an integer from 1 to 1000; anything else
//!   is refused (`BAD_INPUT`).
//! * Snapshot: `{"total": …}`, which the engine stamps with `tick` and the
//!   receiving subscriber's `acked` seq.
//! * Anyone may subscribe and send inputs; a socket's subscriber is its
//!   connection.
//!
//! ```
//! use pylon_workers::sim::counter::{Add, Counter};
//! let add: Add = serde_json::from_str(r#"{"add": 5}"#).unwrap();
//! assert_eq!(add.add(), 5);
//! assert!(serde_json::from_str::<Add>(r#"{"add": 0}"#).is_err());
//! assert!(serde_json::from_str::<Add>(r#"{"add": 2.5}"#).is_err());
//! assert!(serde_json::from_str::<Add>(r#"{"add": 1, "by": 2}"#).is_err());
//! ```

use serde::{Deserialize, Serialize};

use super::{Now, SimConfig, SimState, Step};
use crate::policy::AuthContext;
use crate::sql::MAX_SAFE_INT;

/// The largest single add.
pub const MAX_ADD: i64 = 1_000;

/// The state: the sum of every applied add.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    total: i64,
}

impl Counter {
    pub fn total(&self) -> i64 {
        self.total
    }
}

/// `{"add": n}`, 1 ≤ n ≤ 1000 (checked as it is decoded, in both
/// encodings).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "AddWire")]
pub struct Add {
    add: i64,
}

impl Add {
    pub fn new(add: i64) -> Result<Add, String> {
        if (1..=MAX_ADD).contains(&add) {
            Ok(Add { add })
        } else {
            Err(format!(
                "add must be an integer from 1 to {MAX_ADD}, not {add}"
            ))
        }
    }

    pub fn add(self) -> i64 {
        self.add
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddWire {
    add: i64,
}

impl TryFrom<AddWire> for Add {
    type Error = String;
    fn try_from(w: AddWire) -> Result<Add, String> {
        Add::new(w.add)
    }
}

/// What a subscriber sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Total {
    pub total: i64,
}

/// The one way an add fails: the total would leave the range that
/// storage and JavaScript hold exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow;

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the total would pass 2^53 - 1")
    }
}

impl SimState for Counter {
    type Input = Add;
    type Snapshot = Total;
    type Error = Overflow;

    fn config() -> SimConfig {
        SimConfig::new("counter")
    }

    fn new(_name: &str) -> Self {
        Counter::default()
    }

    fn apply_input(&mut self, _: &str, input: Add, _: Now) -> Result<(), Overflow> {
        match self.total.checked_add(input.add) {
            Some(t) if t <= MAX_SAFE_INT => {
                self.total = t;
                Ok(())
            }
            _ => Err(Overflow),
        }
    }

    fn tick(&mut self, _dt: f64, _step: Step) {}

    fn snapshot(&self) -> Total {
        Total { total: self.total }
    }

    /// Anonymous callers may use it.
    fn authorize_subscribe(&self, _: &str, _: &AuthContext) -> Result<(), String> {
        Ok(())
    }
}
