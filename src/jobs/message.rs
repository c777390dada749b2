//! What a queue carries for a job: only its id, which send of it this is,
//! and its priority. The payload stays in the ledger, so a message is a
//! few dozen bytes whatever the job, and a retry by hand needs no copy.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMessage {
    pub id: String,
    /// The ledger counts each hand-over to the queue; a copy of an older
    /// send (after a retry by hand, or a resend after a lost answer) is
    /// refused, so one send runs at most once at a time.
    pub send: i64,
    #[serde(default)]
    pub priority: u8,
}
