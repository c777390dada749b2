//! Which simulation shard to join, as whom, and how to connect.

use std::time::Duration;

use super::super::{Backoff, ClientConfig, ClientError};
use crate::http::percent_encode;
use crate::protocol::Encoding;

/// How to reach one simulation shard. The connection settings are a
/// [`ClientConfig`] (`connection`, whose `shard` is the simulation's id;
/// its `client_id` is not used: `pylon.sim.v1` has no `hello`).
#[derive(Clone, Debug)]
pub struct SimClientConfig {
    /// URL, encoding, token, backoff, timeouts, as for the live client.
    pub connection: ClientConfig,
    /// The kind (its class name in `export!`, in any case), e.g. `counter`.
    pub kind: String,
    /// Who the socket acts as (`?subscriber=`): the server keeps this
    /// subscriber's seqs across connections, so unacknowledged inputs are
    /// resent after a reconnect. `None`: the connection itself, a new
    /// subscriber on every connection (nothing is resent).
    pub subscriber: Option<String>,
}

impl SimClientConfig {
    /// The shard `{url}/v1/sims/{kind}/{id}`, joined as its connection,
    /// in JSON, with the live client's defaults.
    pub fn new(
        url: impl Into<String>,
        kind: impl Into<String>,
        id: impl Into<String>,
    ) -> SimClientConfig {
        SimClientConfig {
            connection: ClientConfig::new(url, id),
            kind: kind.into(),
            subscriber: None,
        }
    }

    /// Acts as `subscriber` (which the kind's `authorize_subscribe` must
    /// allow the token's user; by default only that user's own id).
    pub fn subscriber(mut self, subscriber: impl Into<String>) -> Self {
        self.subscriber = Some(subscriber.into());
        self
    }

    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.connection.encoding = encoding;
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.connection.token = Some(token.into());
        self
    }

    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.connection.backoff = backoff;
        self
    }

    pub fn keepalive(mut self, keepalive: Option<Duration>) -> Self {
        self.connection.keepalive = keepalive;
        self
    }

    /// The simulation's id.
    pub fn id(&self) -> &str {
        &self.connection.shard
    }

    /// `{url}/v1/sims/{kind}/{id}/ws`, with `?subscriber=` when one is
    /// named, after checking each part as the server would.
    pub fn ws_url(&self) -> Result<String, ClientError> {
        let invalid = |message: String| ClientError::InvalidConfig(message);
        crate::route::validate_kind_name(&self.kind).map_err(|e| invalid(e.message))?;
        crate::route::validate_shard_name(self.id()).map_err(|e| invalid(e.message))?;
        let mut url = format!(
            "{}/v1/sims/{}/{}/ws",
            self.connection.url.trim_end_matches('/'),
            self.kind,
            self.id()
        );
        if let Some(s) = &self.subscriber {
            crate::sim::check_subscriber(s).map_err(|e| invalid(e.to_string()))?;
            url.push_str("?subscriber=");
            url.push_str(&percent_encode(s));
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_subscribers_escaped() {
        let c = SimClientConfig::new("ws://h:1/", "counter", "c-1");
        assert_eq!(c.ws_url().unwrap(), "ws://h:1/v1/sims/counter/c-1/ws");
        let c = c.subscriber("ada lovelace");
        assert_eq!(
            c.ws_url().unwrap(),
            "ws://h:1/v1/sims/counter/c-1/ws?subscriber=ada%20lovelace"
        );
        for bad in [
            SimClientConfig::new("ws://h", "count er", "c-1"),
            SimClientConfig::new("ws://h", "counter", "a/b"),
            SimClientConfig::new("ws://h", "counter", "c-1").subscriber("c12"),
            SimClientConfig::new("ws://h", "counter", "c-1").subscriber(""),
        ] {
            assert!(
                matches!(bad.ws_url(), Err(ClientError::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }
}
