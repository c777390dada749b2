//! The simulation client's inputs: their seqs, and which are still to be
//! sent, acknowledged (durable) or processed. Plain data, shared by the
//! handle (which numbers new inputs) and the driver (which sends them and
//! reads the answers) under one lock that is never held across an await.
//!
//! An input's life: numbered ([`InputBook::take`]) → sent on a connection
//! → `sim_ack` (durable: [`InputBook::acked`]) → a snapshot's `acked`
//! reaches its seq (processed: [`InputBook::processed`], gone from the
//! book). A `sim_err` for it removes it ([`InputBook::refused`]).
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
    /// The connection (epoch) it was last sent on.
    sent_on: Option<u64>,
}

/// What a new connection changes.
#[derive(Debug, PartialEq)]
pub(super) struct Resume<I> {
    /// To send now, in seq order (already marked sent).
    pub resend: Vec<(u64, I)>,
    /// Sent, not acknowledged, and never to be resent.
    pub dropped: Vec<u64>,
}

pub(super) struct InputBook<I> {
    /// Whether the server keeps our seqs across connections.
    named: bool,
    /// The last seq given out.
    last: u64,
    /// Inputs not yet processed (nor refused), by seq.
    inputs: BTreeMap<u64, Entry<I>>,
    /// The connection inputs go out on now; counts connections.
    epoch: u64,
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
            epoch: 0,
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
            sent_on: None,
        };
        self.inputs.insert(self.last, entry);
        Ok(self.last)
    }

    /// The input `seq`, to send now if it has not gone out on this
    /// connection yet (marked sent).
    pub(super) fn mark_sent(&mut self, seq: u64) -> Option<I> {
        let epoch = self.epoch;
        let e = self.inputs.get_mut(&seq)?;
        if !self.live || e.durable || e.sent_on == Some(epoch) {
            return None;
        }
        e.sent_on = Some(epoch);
        Some(e.input.clone())
    }

    /// A new connection, whose welcome says the subscriber's last
    /// processed seq is `acked`.
    pub(super) fn welcome(&mut self, acked: u64) -> Resume<I> {
        self.epoch += 1;
        self.live = true;
        let mut resume = Resume {
            resend: Vec::new(),
            dropped: Vec::new(),
        };
        if self.named {
            self.inputs.retain(|&seq, _| seq > acked);
            self.last = self.last.max(acked);
            for (&seq, e) in self.inputs.iter_mut().filter(|(_, e)| !e.durable) {
                e.sent_on = Some(self.epoch);
                resume.resend.push((seq, e.input.clone()));
            }
        } else {
            // Durable ones will be processed, as the old subscriber.
            resume.dropped = (self.inputs.iter())
                .filter(|(_, e)| !e.durable)
                .map(|(&seq, _)| seq)
                .collect();
            self.inputs.clear();
            self.last = acked;
        }
        resume
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
    fn seqs_start_after_the_welcome_and_processed_inputs_leave() {
        let mut b = InputBook::new(true);
        assert_eq!(
            b.welcome(4),
            Resume {
                resend: vec![],
                dropped: vec![]
            }
        );
        let taken: Vec<u64> = "abc".chars().map(|c| b.take(c).unwrap()).collect();
        assert_eq!(taken, [5, 6, 7]);
        assert_eq!(b.mark_sent(5), Some('a'));
        assert_eq!(b.mark_sent(5), None, "sent once per connection");
        b.acked(5);
        b.processed(5);
        assert_eq!(b.pending(), [(6, 'b'), (7, 'c')]);
        b.refused(7);
        assert_eq!(b.pending(), [(6, 'b')]);
    }

    #[test]
    fn a_named_subscriber_resends_what_was_not_acknowledged() {
        let mut b = InputBook::new(true);
        b.welcome(0);
        for c in "abcd".chars() {
            let seq = b.take(c).unwrap();
            b.mark_sent(seq);
        }
        b.acked(1);
        b.acked(2);
        b.processed(1);
        b.offline();
        // Queued while offline: sent with the others.
        assert_eq!(b.take('e').unwrap(), 5);
        assert_eq!(b.mark_sent(5), None);
        let r = b.welcome(1);
        assert_eq!(seqs(&r.resend), [3, 4, 5]);
        assert!(r.dropped.is_empty());
        assert_eq!(
            seqs(&b.pending()),
            [2, 3, 4, 5],
            "2 is durable, not processed"
        );
        assert_eq!(b.mark_sent(3), None, "already resent");
        // The server had processed more than we saw: those leave.
        b.offline();
        let r = b.welcome(4);
        assert_eq!(seqs(&r.resend), [5]);
        assert_eq!(b.take('f').unwrap(), 6);
    }

    #[test]
    fn an_anonymous_subscriber_drops_and_renumbers() {
        let mut b = InputBook::new(false);
        assert!(matches!(b.take('x'), Err(ClientError::NotConnected)));
        b.welcome(0);
        for c in "abc".chars() {
            let seq = b.take(c).unwrap();
            b.mark_sent(seq);
        }
        b.acked(1);
        b.offline();
        assert!(matches!(b.take('x'), Err(ClientError::NotConnected)));
        let r = b.welcome(0);
        assert_eq!(r.dropped, [2, 3]);
        assert!(r.resend.is_empty() && b.pending().is_empty());
        assert_eq!(b.take('d').unwrap(), 1);
        b.close(Some(4410));
        assert_eq!(b.take('e'), Err(ClientError::Closed { code: Some(4410) }));
    }
}
