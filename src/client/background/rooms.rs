//! [`Rooms`]: Pylon's `RoomOps` over `/v1/rooms` (docs/rooms.md): members
//! that a room's sockets see in their presence, broadcasts to the sockets,
//! a room's size and members, and the list of rooms.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{query, segment, Api, RequestError};
use crate::http::HttpClient;

/// Joins, updates and removes members of a room, broadcasts to it, reads
/// it. A caller acts for itself (its user id is the member); an admin's
/// token acts for anyone.
///
/// ```no_run
/// use pylon_workers::client::background::Rooms;
/// use serde_json::json;
/// # async fn demo() -> Result<(), pylon_workers::client::background::RequestError> {
/// let rooms = Rooms::new("http://127.0.0.1:8787").token("an admin's token");
/// rooms.join("lobby", "bot-1", json!({"status": "ready"}), Some(60_000)).await?;
/// rooms.broadcast("lobby", "news", json!({"text": "hello"})).await?;
/// let room = rooms.get("lobby").await?;
/// assert_eq!(room.size, room.members.len() as u64);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Rooms<H = crate::client::PlainHttp> {
    api: Api<H>,
}

super::api_handle!(Rooms);

impl<H: HttpClient> Rooms<H> {
    fn path(room: &str, op: &str) -> String {
        format!("/v1/rooms/{}{op}", segment(room))
    }

    /// `POST /v1/rooms/{room}/join`: adds (or updates) `member` with its
    /// presence; with `ttl_ms` it leaves that long after.
    pub async fn join(
        &self,
        room: &str,
        member: &str,
        presence: Value,
        ttl_ms: Option<i64>,
    ) -> Result<(), RequestError> {
        let mut body = json!({ "member": member, "presence": presence });
        if let Some(t) = ttl_ms {
            body["ttlMs"] = json!(t);
        }
        let _: Value = self.api.post(&Self::path(room, "/join"), &body).await?;
        Ok(())
    }

    /// `POST /v1/rooms/{room}/presence`: replaces a member's presence
    /// (`ttl_ms` renews its time); `MEMBER_NOT_FOUND` if it is not in.
    pub async fn set_presence(
        &self,
        room: &str,
        member: &str,
        presence: Value,
        ttl_ms: Option<i64>,
    ) -> Result<(), RequestError> {
        let mut body = json!({ "member": member, "presence": presence });
        if let Some(t) = ttl_ms {
            body["ttlMs"] = json!(t);
        }
        let _: Value = self.api.post(&Self::path(room, "/presence"), &body).await?;
        Ok(())
    }

    /// `POST /v1/rooms/{room}/leave`: whether the member was in the room.
    pub async fn leave(&self, room: &str, member: &str) -> Result<bool, RequestError> {
        #[derive(Deserialize)]
        struct Left {
            left: bool,
        }
        let body = json!({ "member": member });
        let left: Left = self.api.post(&Self::path(room, "/leave"), &body).await?;
        Ok(left.left)
    }

    /// `POST /v1/rooms/{room}/broadcast`: a `bcast` to every socket.
    pub async fn broadcast(
        &self,
        room: &str,
        topic: &str,
        data: Value,
    ) -> Result<(), RequestError> {
        let body = json!({ "topic": topic, "data": data });
        let _: Value = self
            .api
            .post(&Self::path(room, "/broadcast"), &body)
            .await?;
        Ok(())
    }

    /// `GET /v1/rooms/{room}`: its size and members.
    pub async fn get(&self, room: &str) -> Result<RoomInfo, RequestError> {
        self.api.get(&Self::path(room, "")).await
    }

    /// `GET /v1/rooms?after=&limit=`: rooms with members, by name.
    pub async fn list(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<RoomPage, RequestError> {
        let q = query(&[
            ("after", after.map(str::to_owned)),
            ("limit", limit.map(|l| l.to_string())),
        ]);
        self.api.get(&format!("/v1/rooms{q}")).await
    }
}

/// One member: a socket with a presence (`conn` `c1`, …) or an HTTP
/// member (`conn` `member:{member}`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomMember {
    pub conn: String,
    pub state: Value,
    #[serde(default)]
    pub member: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// A room's size and members.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RoomInfo {
    pub room: String,
    pub size: u64,
    pub members: Vec<RoomMember>,
    /// Open sockets, with a presence or not.
    pub sockets: u64,
}

/// One room of the list (about 100 ms behind the room itself).
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ListedRoom {
    pub room: String,
    pub members: u64,
    pub updated: Option<String>,
}

/// A page of rooms; `next` is the `after` of the next page.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RoomPage {
    pub rooms: Vec<ListedRoom>,
    pub next: Option<String>,
}
