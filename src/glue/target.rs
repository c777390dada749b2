//! Where the router sends a request inside the Worker, and as whom: the
//! object's name and the rest of the path (parsed once, by the router) and
//! the verified caller with its lease, in internal headers. Clients cannot
//! set them: the router removes every incoming `x-pylon-*` header first
//! (`glue::auth::forward`, which writes the caller).

use worker::{Headers, Request, Result};

use crate::api_error::ApiError;
use crate::auth::{decode_caller, Lease, AUTH_HEADER};
use crate::policy::AuthContext;

/// The object's name.
const OBJECT_HEADER: &str = "x-pylon-object";
/// The path after the object's name.
const REST_HEADER: &str = "x-pylon-rest";

/// A request's destination and caller, as the router decided them.
pub(crate) struct Target {
    pub object: String,
    pub rest: String,
    pub caller: AuthContext,
    pub lease: Lease,
}

/// Writes the route into a forwarded request's headers (the router).
pub(crate) fn write_route(headers: &Headers, object: &str, rest: &str) -> Result<()> {
    headers.set(OBJECT_HEADER, object)?;
    headers.set(REST_HEADER, rest)
}

impl Target {
    /// Reads it back (the object's host). A request without it did not
    /// come through the router: a 500, logged.
    pub fn read(req: &Request) -> Result<std::result::Result<Target, ApiError>> {
        let h = req.headers();
        let (object, rest, auth) = (
            h.get(OBJECT_HEADER)?,
            h.get(REST_HEADER)?,
            h.get(AUTH_HEADER)?,
        );
        match (object, rest, auth.as_deref().and_then(decode_caller)) {
            (Some(object), Some(rest), Some((caller, lease))) => Ok(Ok(Target {
                object,
                rest,
                caller,
                lease,
            })),
            _ => {
                worker::console_error!("host: a request without the router's target headers");
                Ok(Err(ApiError::internal(
                    "the request did not come through the router",
                )))
            }
        }
    }
}
