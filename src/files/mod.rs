//! Files (docs/files.md): Pylon's `FileOps` on an R2 bucket. Bytes go to
//! R2, streamed through the Worker; each file has a row in an entity of
//! the app's own (the manifest's `files.entity`) in the shard it belongs
//! to, so live queries see uploads and the manifest's policies decide who
//! may upload (insert), read and delete it like any row.
//!
//! This module holds the decisions, in plain Rust: file ids
//! ([`check_id`]), the upload's limits and its row ([`upload`]), signed
//! upload URLs ([`signed_url`]), ranges and conditional downloads
//! ([`serve`]). The Worker's glue reads headers, streams bodies and calls
//! R2 and the shard.
//!
//! ```
//! use pylon_workers::files::{check_id, range::parse_range};
//! assert_eq!(check_id("..").unwrap_err().code(), "BAD_FILE_ID");
//! let r = parse_range(Some("bytes=0-99"), 1000).unwrap().unwrap();
//! assert_eq!(r.content_range(1000), "bytes 0-99/1000");
//! ```

pub mod config;
mod error;
mod key;
pub mod multipart;
pub mod path;
pub mod range;
pub mod serve;
pub mod signed_url;
pub mod upload;

pub use config::FilesConfig;
pub use error::FileError;
pub use key::{check_id, etag_of, object_key, MAX_ID_CHARS};
