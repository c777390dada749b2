//! A JWKS endpoint on 127.0.0.1 for the suite: serves the public halves of
//! the test keys (tests/fixtures/jwt) at `/jwks.json`, can rotate them and
//! go down (connections closed unanswered), and counts the requests.
//! The Worker is pointed at it with the `PYLON_JWKS_URL` var.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use pylon_workers::auth::sign::{
    es256_key_from_pem, jwk_es256, jwk_rs256, rs256_key_from_pem, Es256Key, Rs256Key,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::project_root;

/// The test keys, by the `kid` they are published under.
pub struct TestKeys {
    pub rsa_a: Rs256Key,
    pub rsa_b: Rs256Key,
    pub ec_a: Es256Key,
    pub ec_b: Es256Key,
}

impl TestKeys {
    pub fn load() -> Result<TestKeys> {
        let pem = |name: &str| {
            std::fs::read_to_string(project_root().join("tests/fixtures/jwt").join(name))
        };
        let rsa = |n: &str| -> Result<Rs256Key> {
            rs256_key_from_pem(&pem(n)?).map_err(anyhow::Error::msg)
        };
        let ec = |n: &str| -> Result<Es256Key> {
            es256_key_from_pem(&pem(n)?).map_err(anyhow::Error::msg)
        };
        Ok(TestKeys {
            rsa_a: rsa("rsa-a.pem")?,
            rsa_b: rsa("rsa-b.pem")?,
            ec_a: ec("ec-a.pem")?,
            ec_b: ec("ec-b.pem")?,
        })
    }

    /// The set published at first: `rsa-a` and `ec-a`.
    pub fn initial(&self) -> Value {
        json!({"keys": [jwk_rs256(&self.rsa_a, "rsa-a"), jwk_es256(&self.ec_a, "ec-a")]})
    }

    /// After a rotation: `rsa-b` and `ec-b` replace them.
    pub fn rotated(&self) -> Value {
        json!({"keys": [jwk_rs256(&self.rsa_b, "rsa-b"), jwk_es256(&self.ec_b, "ec-b")]})
    }
}

struct State {
    doc: Value,
    up: bool,
    hits: u64,
    /// Answers wait this long (a slow provider).
    delay_ms: u64,
}

#[derive(Clone)]
pub struct JwksServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl JwksServer {
    pub async fn start(doc: Value) -> Result<JwksServer> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(State {
            doc,
            up: true,
            hits: 0,
            delay_ms: 0,
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 8192];
                    let mut n = 0;
                    while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                        match sock.read(&mut buf[n..]).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => n += k,
                        }
                    }
                    let (up, body, delay) = {
                        let mut s = state.lock().unwrap();
                        s.hits += 1;
                        (s.up, s.doc.to_string(), s.delay_ms)
                    };
                    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                    if !up {
                        return; // closed unanswered: the endpoint is down
                    }
                    let head = if buf[..n].starts_with(b"GET /jwks.json ") {
                        "200 OK"
                    } else {
                        "404 Not Found"
                    };
                    let resp = format!(
                        "HTTP/1.1 {head}\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Ok(JwksServer { port, state })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks.json", self.port)
    }

    pub fn set_doc(&self, doc: Value) {
        self.state.lock().unwrap().doc = doc;
    }

    pub fn set_delay_ms(&self, ms: u64) {
        self.state.lock().unwrap().delay_ms = ms;
    }

    pub fn set_up(&self, up: bool) {
        self.state.lock().unwrap().up = up;
    }

    /// Requests received so far (answered or not).
    pub fn hits(&self) -> u64 {
        self.state.lock().unwrap().hits
    }
}
