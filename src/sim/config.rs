//! How a kind of simulation runs: its tick rate and its limits, written
//! once per kind next to its [`SimState`](super::SimState).
//!
//! ```
//! use pylon_workers::sim::SimConfig;
//! // A 20 Hz game of at most 16 players that rests after 10 s alone.
//! const GAME: SimConfig = SimConfig {
//!     tick_hz: 20,
//!     max_subscribers: 16,
//!     idle_ticks: 200,
//!     ..SimConfig::new("game")
//! };
//! assert_eq!(GAME.validate(), Ok(()));
//! assert_eq!(GAME.dt(), 0.05);
//! ```

use crate::protocol::Encoding;

/// The configuration of one kind of simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The kind's name (`counter`, `game`): shown in stats and replays.
    pub kind: &'static str,
    /// Ticks per second. 0 makes the kind event-driven: it ticks once for
    /// each input, right after applying it, and never sets a timer.
    pub tick_hz: u32,
    /// Open sockets at most; one more is refused (503 `SIM_FULL`).
    pub max_subscribers: u32,
    /// Inputs waiting for the next tick at most; one more is refused
    /// (`QUEUE_FULL`) and not logged.
    pub max_queued_inputs: u32,
    /// Ticks in a row with no input and no subscriber after which the
    /// shard stops ticking: it sets no timer, so it has no alarm and may be
    /// evicted. The next input or subscriber starts it again.
    pub idle_ticks: u32,
    /// `None`: each socket gets the encoding it negotiated. `Some(e)`: the
    /// kind speaks only `e` (its types need it), and an upgrade that
    /// negotiated the other is refused (400 `UNSUPPORTED_ENCODING`).
    pub snapshot_encoding: Option<Encoding>,
    /// The state is persisted every this many ticks (and whenever the
    /// shard stops or finishes). Between two, a restore re-applies the
    /// logged inputs: fewer writes against a longer replay on wake.
    pub persist_every_ticks: u32,
    /// A late wake runs at most this many ticks; the rest are skipped and
    /// counted (`ticks_skipped`) rather than run in a spiral.
    pub max_ticks_per_wake: u32,
    /// The largest input: a socket frame (the whole message) or an HTTP
    /// body (the input itself), in bytes.
    pub max_input_bytes: usize,
    /// Logged inputs kept for `GET …/replay`; older ones are dropped once
    /// a persisted state contains them (those after it are always kept).
    pub max_log_inputs: u32,
}

impl SimConfig {
    /// The defaults, for kind `kind`: event-driven, 1,000 subscribers,
    /// 1,000 queued inputs, idle after 100 ticks, persisted every 100
    /// ticks, at most 5 ticks per wake, inputs up to 16 KiB, 10,000 inputs
    /// kept for replay.
    pub const fn new(kind: &'static str) -> SimConfig {
        SimConfig {
            kind,
            tick_hz: 0,
            max_subscribers: 1_000,
            max_queued_inputs: 1_000,
            idle_ticks: 100,
            snapshot_encoding: None,
            persist_every_ticks: 100,
            max_ticks_per_wake: 5,
            max_input_bytes: 16 * 1024,
            max_log_inputs: 10_000,
        }
    }

    /// Whether the kind ticks only on input.
    pub const fn is_event_driven(&self) -> bool {
        self.tick_hz == 0
    }

    /// The seconds one tick covers: `1 / tick_hz`, or 0 for an
    /// event-driven kind (time passes only through its inputs' `now`).
    pub fn dt(&self) -> f64 {
        dt_of(self.tick_hz)
    }

    /// The configuration a deployment runs: this one with the settings of
    /// `vars` (wrangler `[vars]`) for this kind applied, read when a shard
    /// opens. `PYLON_SIM_TICK_HZ_<KIND>` (0 to 1000) replaces `tick_hz`;
    /// `PYLON_SIM_MAX_SUBSCRIBERS_<KIND>` (1 to 32,768) replaces
    /// `max_subscribers`. `<KIND>` is [`var_suffix`] of the kind's name
    /// (`plane`: `PYLON_SIM_TICK_HZ_PLANE`). A value that is not a whole
    /// number in range is an error naming the variable: the shard does
    /// not open.
    ///
    /// ```
    /// use pylon_workers::sim::SimConfig;
    /// let vars = |k: &str| (k == "PYLON_SIM_TICK_HZ_GAME").then(|| "60".to_string());
    /// let c = SimConfig { tick_hz: 20, ..SimConfig::new("game") }.with_vars(&vars).unwrap();
    /// assert_eq!((c.tick_hz, c.dt()), (60, 1.0 / 60.0));
    /// let bad = |_: &str| Some("fast".to_string());
    /// assert!(SimConfig::new("game").with_vars(&bad).unwrap_err().contains("PYLON_SIM_TICK_HZ_GAME"));
    /// ```
    pub fn with_vars(mut self, vars: &dyn Fn(&str) -> Option<String>) -> Result<SimConfig, String> {
        let suffix = var_suffix(self.kind);
        let read = |prefix: &str, range: std::ops::RangeInclusive<u32>| {
            let name = format!("{prefix}{suffix}");
            match vars(&name) {
                None => Ok(None),
                Some(v) => match v.trim().parse::<u32>() {
                    Ok(n) if range.contains(&n) => Ok(Some(n)),
                    _ => Err(format!(
                        "{name} is `{v}`: expected a whole number from {} to {}",
                        range.start(),
                        range.end()
                    )),
                },
            }
        };
        if let Some(hz) = read(TICK_HZ_VAR, 0..=MAX_TICK_HZ)? {
            self.tick_hz = hz;
        }
        if let Some(n) = read(MAX_SUBSCRIBERS_VAR, 1..=MAX_SUBSCRIBERS)? {
            self.max_subscribers = n;
        }
        Ok(self)
    }

    /// Every limit is usable: a kind with a bad configuration does not open.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_subscribers", self.max_subscribers),
            ("max_queued_inputs", self.max_queued_inputs),
            ("idle_ticks", self.idle_ticks),
            ("persist_every_ticks", self.persist_every_ticks),
            ("max_ticks_per_wake", self.max_ticks_per_wake),
            ("max_log_inputs", self.max_log_inputs),
        ];
        if let Some((name, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(format!("{}: {name} must be at least 1", self.kind));
        }
        if self.tick_hz > MAX_TICK_HZ {
            return Err(format!("{}: tick_hz is at most {MAX_TICK_HZ}", self.kind));
        }
        if self.max_input_bytes == 0 {
            return Err(format!("{}: max_input_bytes must be at least 1", self.kind));
        }
        if self.kind.is_empty() {
            return Err("a kind needs a name".into());
        }
        Ok(())
    }
}

/// The deployment setting that overrides a kind's tick rate: this, then
/// the kind's [`var_suffix`].
const TICK_HZ_VAR: &str = "PYLON_SIM_TICK_HZ_";
/// The one that overrides its `max_subscribers`.
const MAX_SUBSCRIBERS_VAR: &str = "PYLON_SIM_MAX_SUBSCRIBERS_";
/// The fastest tick rate a kind may run at.
const MAX_TICK_HZ: u32 = 1_000;
/// The most sockets a deployment may let one shard hold (the platform's
/// limit of hibernatable WebSockets per object).
const MAX_SUBSCRIBERS: u32 = 32_768;

/// A kind's name as it ends its deployment settings: upper-cased, every
/// character other than a letter or a digit made `_` (`my-game`: `MY_GAME`).
pub fn var_suffix(kind: &str) -> String {
    kind.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The seconds one tick covers at `tick_hz` (0: event-driven, 0 s).
pub(crate) fn dt_of(tick_hz: u32) -> f64 {
    if tick_hz == 0 {
        0.0
    } else {
        1.0 / f64::from(tick_hz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_zeroes_do_not() {
        assert_eq!(SimConfig::new("k").validate(), Ok(()));
        let bad = SimConfig {
            idle_ticks: 0,
            ..SimConfig::new("k")
        };
        assert!(bad.validate().unwrap_err().contains("idle_ticks"));
        assert_eq!(SimConfig::new("k").dt(), 0.0);
    }

    #[test]
    fn deployment_settings_override_the_rate_and_the_subscribers_in_range_only() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let base = SimConfig {
            tick_hz: 20,
            ..SimConfig::new("my-game")
        };
        assert_eq!(base.clone().with_vars(&vars(&[])), Ok(base.clone()));
        let c = base
            .clone()
            .with_vars(&vars(&[
                ("PYLON_SIM_TICK_HZ_MY_GAME", " 0 "),
                ("PYLON_SIM_MAX_SUBSCRIBERS_MY_GAME", "1000"),
                ("PYLON_SIM_TICK_HZ_PLANE", "60"),
            ]))
            .unwrap();
        assert_eq!((c.tick_hz, c.max_subscribers, c.dt()), (0, 1000, 0.0));
        for (name, bad) in [
            ("PYLON_SIM_TICK_HZ_MY_GAME", "1001"),
            ("PYLON_SIM_TICK_HZ_MY_GAME", "-1"),
            ("PYLON_SIM_TICK_HZ_MY_GAME", "2.5"),
            ("PYLON_SIM_TICK_HZ_MY_GAME", ""),
            ("PYLON_SIM_MAX_SUBSCRIBERS_MY_GAME", "0"),
            ("PYLON_SIM_MAX_SUBSCRIBERS_MY_GAME", "40000"),
        ] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(name, bad)]));
            let e = base.clone().with_vars(&vars(pairs)).unwrap_err();
            assert!(e.contains(name) && e.contains(&format!("`{bad}`")), "{e}");
        }
    }
}
