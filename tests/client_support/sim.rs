//! The scripted server's side of a simulation socket (`pylon.sim.v1`):
//! the same connections as the live protocol's, speaking the messages of
//! `sim::wire` with the counter's input and snapshot.

use std::time::Duration;

use pylon_workers::client::sim::{SimClient, SimClientConfig};
use pylon_workers::client::Backoff;
use pylon_workers::http::form_urldecode;
use pylon_workers::protocol::{Encoding, FrameRef};
use pylon_workers::sim::counter::{Add, Total};
use pylon_workers::sim::wire::{
    self, Ack, InputMsg, SimClientMsg, SimServerMsg, SnapshotMsg, Welcome, SIM_PROTOCOL,
};
use tokio_tungstenite::tungstenite::Message;

use super::{FakeConn, FakeServer};

/// The client the tests use: the counter's input and snapshot.
pub type Counter = SimClient<Add, Total>;

pub fn add(n: i64) -> Add {
    Add::new(n).unwrap()
}

impl FakeServer {
    /// A config for the counter shard `c-1` on this server, with fast
    /// reconnects (20 ms, doubling, at most 100 ms) and no keepalive.
    pub fn sim_config(&self, encoding: Encoding) -> SimClientConfig {
        SimClientConfig::new(self.url(), "counter", "c-1")
            .encoding(encoding)
            .backoff(Backoff {
                initial: Duration::from_millis(20),
                max: Duration::from_millis(100),
                factor: 2.0,
            })
            .keepalive(None)
    }

    /// Joins with `config`, the server welcoming at tick 3 with `acked`.
    pub async fn join(&mut self, config: SimClientConfig, acked: u64) -> (Counter, FakeConn) {
        let (client, conn) = tokio::join!(Counter::join(config), async {
            let mut conn = self.accept().await;
            conn.sim_welcome(3, acked).await;
            conn
        });
        (client.expect("join"), conn)
    }
}

impl FakeConn {
    /// The subscriber the upgrade named (`?subscriber=`), if any.
    pub fn named_subscriber(&self) -> Option<String> {
        let query = form_urldecode(self.query.as_deref()?);
        query
            .into_iter()
            .find(|(k, _)| k == "subscriber")
            .map(|(_, v)| v)
    }

    pub async fn send_sim(&mut self, msg: SimServerMsg<Total>) {
        self.send_frame(wire::encode_server(self.encoding, &msg))
            .await;
    }

    /// `sim_welcome` as the named subscriber, or as this connection.
    pub async fn sim_welcome(&mut self, tick: u64, acked: u64) {
        let welcome = Welcome {
            protocol: SIM_PROTOCOL.into(),
            sim: "c-1".into(),
            kind: "counter".into(),
            conn: self.conn_id.clone(),
            subscriber: self.named_subscriber().unwrap_or(self.conn_id.clone()),
            tick,
            acked,
            tick_hz: 0,
            encoding: self.encoding,
        };
        self.send_sim(SimServerMsg::Welcome(welcome)).await;
    }

    pub async fn ack(&mut self, seq: u64, tick: u64) {
        let ack = Ack {
            seq,
            tick,
            dup: false,
        };
        self.send_sim(SimServerMsg::Ack(ack)).await;
    }

    pub async fn snapshot(&mut self, tick: u64, acked: u64, total: i64, is_final: bool) {
        let snap = SnapshotMsg {
            tick,
            acked,
            is_final,
            snapshot: Total { total },
        };
        self.send_sim(SimServerMsg::Snapshot(snap)).await;
    }

    /// The next `sim_input`, decoded as the shard does (which checks the
    /// frame's kind against the encoding).
    pub async fn recv_input(&mut self) -> InputMsg<Add> {
        let frame = self.recv_frame().await;
        let frame = match &frame {
            Message::Text(t) => FrameRef::Text(t.as_str()),
            Message::Binary(b) => FrameRef::Binary(b),
            other => panic!("fake server: unexpected frame {other:?}"),
        };
        let SimClientMsg::Input(input) = wire::decode_client(self.encoding, frame, 1 << 16)
            .expect("fake server: undecodable sim_input");
        input
    }

    /// The seqs of the next `n` inputs.
    pub async fn recv_seqs(&mut self, n: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        for _ in 0..n {
            seqs.push(self.recv_input().await.seq);
        }
        seqs
    }
}
