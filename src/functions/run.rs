//! A function run on someone's behalf outside a request (a job, a
//! workflow step, a cron entry): what to run, as whom, and where.

use serde::{Deserialize, Serialize};

use crate::policy::AuthContext;
use crate::value::Value;

/// Runs function `name` with `args` as `caller`. An action runs in the
/// Worker (its queries and mutations go to `shard`); a query or mutation
/// runs in `shard`, with op id `op` for a mutation, so a rerun of the same
/// run is answered with the first result instead of writing again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionRun {
    pub name: String,
    pub args: Value,
    pub caller: AuthContext,
    pub shard: Option<String>,
    pub op: Option<String>,
}
