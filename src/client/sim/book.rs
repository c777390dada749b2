//! The simulation client's inputs: their seqs, and which are still to be
//! sent, acknowledged (durable) or processed. Plain data, shared by the
//! handle (which numbers new inputs) and the driver (which sends them and
//! reads the answers) under one lock that is never held across an await.
//!
//! An input's life: numbered ([`InputBook::take`]) → sent on a connection
//! ([`InputBook::unsent`]) → `sim_ack` (durable: [`InputBook::acked`]) →
//! a snapshot's `acked` reaches its seq (processed:
//! [`InputBook::processed`], gone from the book). A `sim_err` for it
//! removes it ([`InputBook::refused`]).
//!
//! Inputs go out in seq order, always: the server takes a seq at or below
//! the last one it took from the subscriber for a duplicate, so a later
//! seq overtaking an earlier one would make the earlier one look done.
//!
//! After a reconnect ([`InputBook::welcome`]), as a named subscriber the
//! server still knows our seqs: every input not acknowledged is sent
//! again with its seq (a duplicate is acknowledged, not applied twice).
//! As the connection (anonymous), the new connection is a new subscriber:
//! seqs restart after its `acked`, and inputs not acknowledged are dropped
//! (resent, they could be applied twice).

use std::collections::BTreeMap;

use super::super::ClientError;

struct Entry<I> {
    input: I,
    /// `sim_ack` came: logged, it will be processed whatever happens.
    durable: bool,
}

pub(super) struct InputBook<I> {
    /// Whether the server keeps our seqs across connections.
    named: bool,
    /// The last seq given out.
    last: u64,
    /// Inputs not yet processed (nor refused), by seq.
    inputs: BTreeMap<u64, Entry<I>>,
    /// Every input up to this seq has gone out on the current connection
    /// (or needs not).
    sent_through: u64,
    live: bool,
    /// `Some(close code)` once the client stopped.
    closed: Option<Option<u16>>,
}

impl<I: Clone> InputBook<I> {
    pub(super) fn new(named: bool) -> InputBook<I> {
        InputBook {
            named,
            last: 0,
            inputs: BTreeMap::new(),
            sent_through: 0,
            live: false,
            closed: None,
        }
    }

    /// Numbers a new input. While disconnected a named subscriber's input
    /// waits for the next connection; an anonymous one is refused
    /// ([`ClientError::NotConnected`]): it would go out as another
    /// subscriber than the caller sees now.
    pub(super) fn take(&mut self, input: I) -> Result<u64, ClientError> {
        if let Some(code) = self.closed {
            return Err(ClientError::Closed { code });
        }
        if !self.named && !self.live {
            return Err(ClientError::NotConnected);
        }
        self.last += 1;
        let entry = Entry {
            input,
            durable: false,
        };
        self.inputs.insert(self.last, entry);
        Ok(self.last)
    }

    /// The inputs to send now, in seq order: those that have not gone out
    /// on this connection and are not acknowledged (none while offline).
    pub(super) fn unsent(&mut self) -> Vec<(u64, I)> {
        if !self.live {
            return Vec::new();
        }
        let out = (self.inputs.range(self.sent_through + 1..))
            .filter(|(_, e)| !e.durable)
            .map(|(&seq, e)| (seq, e.input.clone()))
            .collect();
        self.sent_through = self.last;
        out
    }

    /// A new connection, whose welcome says the subscriber's last
    /// processed seq is `acked`. Returns the inputs dropped (anonymous:
    /// sent, not acknowledged, never to be resent).
    pub(super) fn welcome(&mut self, acked: u64) -> Vec<u64> {
        self.live = true;
        self.sent_through = acked;
        if self.named {
            self.inputs.retain(|&seq, _| seq > acked);
            self.last = self.last.max(acked);
            return Vec::new();
        }
        // Durable ones will be processed, as the old subscriber.
        let dropped = (self.inputs.iter())
            .filter(|(_, e)| !e.durable)
            .map(|(&seq, _)| seq)
            .collect();
        self.inputs.clear();
        self.last = acked;
        dropped
    }

    /// `sim_ack` for `seq`.
    pub(super) fn acked(&mut self, seq: u64) {
        if let Some(e) = self.inputs.get_mut(&seq) {
            e.durable = true;
        }
    }

    /// A snapshot reflects every input up to `acked`.
    pub(super) fn processed(&mut self, acked: u64) {
        self.inputs.retain(|&seq, _| seq > acked);
    }

    /// `sim_err` for `seq`: it was not logged and will not be processed.
    pub(super) fn refused(&mut self, seq: u64) {
        self.inputs.remove(&seq);
    }

    /// The connection ended.
    pub(super) fn offline(&mut self) {
        self.live = false;
    }

    pub(super) fn close(&mut self, code: Option<u16>) {
        self.live = false;
        self.closed = Some(code);
    }

    /// Inputs not yet processed, in seq order.
    pub(super) fn pending(&self) -> Vec<(u64, I)> {
        (self.inputs.iter())
            .map(|(&seq, e)| (seq, e.input.clone()))
            .collect()
    }

    /// The last seq given out.
    pub(super) fn last(&self) -> u64 {
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(r: &[(u64, char)]) -> Vec<u64> {
        r.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn seqs_start_after_the_welcome_and_go_out_once_in_order() {
        let mut b = InputBook::new(true);
        assert!(b.welcome(4).is_empty());
        let taken: Vec<u64> = "abc".chars().map(|c| b.take(c).unwrap()).collect();
        assert_eq!(taken, [5, 6, 7]);
        // However the senders were told, everything new goes, in order.
        assert_eq!(b.unsent(), [(5, 'a'), (6, 'b'), (7, 'c')]);
        assert_eq!(b.unsent(), [], "sent once per connection");
        b.take('d').unwrap();
        assert_eq!(b.unsent(), [(8, 'd')]);
        b.acked(5);
        b.processed(5);
        assert_eq!(seqs(&b.pending()), [6, 7, 8]);
        b.refused(7);
        assert_eq!(seqs(&b.pending()), [6, 8]);
    }

    #[test]
    fn a_named_subscriber_resends_what_was_not_acknowledged() {
        let mut b = InputBook::new(true);
        b.welcome(0);
        for c in "abcd".chars() {
            b.take(c).unwrap();
        }
        assert_eq!(b.unsent().len(), 4);
        b.acked(1);
        b.acked(2);
        b.processed(1);
        b.offline();
        // Queued while offline: sent with the others.
        assert_eq!(b.take('e').unwrap(), 5);
        assert_eq!(b.unsent(), []);
        assert!(b.welcome(1).is_empty());
        assert_eq!(seqs(&b.unsent()), [3, 4, 5], "2 is durable");
        assert_eq!(seqs(&b.pending()), [2, 3, 4, 5], "2 is not processed yet");
        // The server had processed more than we saw: those leave.
        b.offline();
        b.welcome(4);
        assert_eq!(seqs(&b.unsent()), [5]);
        assert_eq!(b.take('f').unwrap(), 6);
    }

    #[test]
    fn an_anonymous_subscriber_drops_and_renumbers() {
        let mut b = InputBook::new(false);
        assert!(matches!(b.take('x'), Err(ClientError::NotConnected)));
        b.welcome(0);
        for c in "abc".chars() {
            b.take(c).unwrap();
        }
        b.unsent();
        b.acked(1);
        b.offline();
        assert!(matches!(b.take('x'), Err(ClientError::NotConnected)));
        assert_eq!(b.welcome(0), [2, 3]);
        assert!(b.unsent().is_empty() && b.pending().is_empty());
        assert_eq!(b.take('d').unwrap(), 1);
        assert_eq!(b.unsent(), [(1, 'd')]);
        b.close(Some(4410));
        assert_eq!(b.take('e'), Err(ClientError::Closed { code: Some(4410) }));
    }
}
