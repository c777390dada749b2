//! The manifest this Worker serves, embedded at build time (see build.rs:
//! `PYLON_SCHEMA`, default `examples/schema.json`) and parsed once per
//! isolate. It never changes while the isolate lives, so a static is safe
//! across Durable Object evictions. Router and Shard object share it.

use std::sync::{Arc, OnceLock};

use crate::api_error::ApiError;
use crate::manifest::Manifest;

const SCHEMA_JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/schema.json"));

/// The embedded manifest, or a 500 that says why it does not load.
pub(crate) fn manifest() -> Result<Arc<Manifest>, ApiError> {
    static MANIFEST: OnceLock<Result<Arc<Manifest>, String>> = OnceLock::new();
    MANIFEST
        .get_or_init(|| {
            Manifest::from_json_str(SCHEMA_JSON)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| ApiError::internal(format!("the manifest does not load: {e}")))
}
