//! The keepalive of a connection (docs/protocol.md, "Keepalive"): after
//! `every` of silence from the server, send the `pylon.keepalive` frame;
//! after twice that, give the connection up. The same for both clients.

use std::time::{Duration, Instant};

use tokio::time::{Interval, MissedTickBehavior};

use super::raw::RawConnection;
use super::reconnect::Flow;

pub(super) struct Keepalive {
    every: Option<Duration>,
    last_heard: Instant,
    timer: Interval,
}

impl Keepalive {
    /// Starts counting silence now. `None`: never send, never give up.
    pub(super) fn start(every: Option<Duration>) -> Keepalive {
        // Checked four times per period, so a keepalive goes out at most a
        // quarter period late.
        let mut timer = tokio::time::interval(every.map_or(Duration::from_secs(3600), |k| k / 4));
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Keepalive {
            every,
            last_heard: Instant::now(),
            timer,
        }
    }

    /// Something came from the server.
    pub(super) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Resolves when it is time for [`Self::check`] (never without a
    /// period).
    pub(super) async fn due(&mut self) {
        if self.every.is_none() {
            std::future::pending::<()>().await;
        }
        self.timer.tick().await;
    }

    /// Sends the keepalive frame after a period of silence; drops the
    /// connection after two.
    pub(super) async fn check(&self, conn: &mut RawConnection) -> Flow {
        let Some(k) = self.every else {
            return Flow::Continue;
        };
        let silent = self.last_heard.elapsed();
        if silent >= 2 * k {
            Flow::Dropped {
                code: None,
                reason: format!("no frame from the server for {silent:?}"),
            }
        } else if silent >= k {
            match conn.send_keepalive().await {
                Ok(()) => Flow::Continue,
                Err(e) => Flow::Dropped {
                    code: None,
                    reason: e.to_string(),
                },
            }
        } else {
            Flow::Continue
        }
    }
}
