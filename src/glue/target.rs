//! Where the router sends a request inside the Worker, and as whom: the
//! object's name and the rest of the path (parsed once, by the router) and
//! the verified caller, in internal headers. Clients cannot set them: the
//! router removes every incoming `x-pylon-*` header first (`glue::auth`).

use worker::{Headers, Request, Result};

use crate::api_error::ApiError;
use crate::auth::{decode_context, encode_context, AUTH_HEADER};
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
}

impl Target {
    /// Writes the target into a request's headers (the router).
    pub fn write(&self, headers: &mut Headers) -> Result<()> {
        headers.set(OBJECT_HEADER, &self.object)?;
        headers.set(REST_HEADER, &self.rest)?;
        headers.set(AUTH_HEADER, &encode_context(&self.caller))
    }

    /// Reads it back (the object's host). A request without it did not come
    /// through the router: a 500, logged.
    pub fn read(req: &Request) -> Result<std::result::Result<Target, ApiError>> {
        let h = req.headers();
        let (object, rest, auth) = (h.get(OBJECT_HEADER)?, h.get(REST_HEADER)?, h.get(AUTH_HEADER)?);
        let caller = auth.as_deref().and_then(decode_context);
        match (object, rest, caller) {
            (Some(object), Some(rest), Some(caller)) => Ok(Ok(Target {
                object,
                rest,
                caller,
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
