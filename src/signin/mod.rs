//! Sign-in and our own sessions (docs/sign-in.md).
//!
//! - **Sessions**: a short-lived HS256 access token naming its session
//!   (`session`), and an opaque refresh token stored hashed, rotated on each
//!   use with reuse detection (`store`). The router checks every session
//!   token's session against the store, with a short per-isolate cache
//!   (`revocation`). Tokens travel as `Authorization: Bearer`, the
//!   `bearer.` WebSocket subprotocol entry, or the `pylon_session` cookie
//!   (`cookie`), whose state-changing uses need the CSRF checks (`csrf`).
//! - **OAuth 2.0** code flow with PKCE and state for GitHub and any OpenID
//!   Connect provider (`oauth`, `pkce`, `github`, `oidc`).
//! - **Email** magic link and one-time code through an HTTP email API
//!   (`email`).
//! - The `/v1/auth/...` endpoints (`endpoints`), taking plain requests and
//!   returning plain responses; HTTP, the store and randomness are passed
//!   in, so all of it runs natively in tests and unchanged in the Worker.
//!
//! ```
//! use pylon_workers::signin::{pkce, session};
//! assert_eq!(pkce::challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").len(), 43);
//! assert!(!session::is_session_token("not.a.token"));
//! ```

pub mod config;
pub mod cookie;
pub mod csrf;
pub mod email;
pub mod endpoints;
mod error;
pub mod github;
pub mod oauth;
pub mod object;
pub mod oidc;
pub mod pkce;
pub mod random;
pub mod redirect;
pub mod revocation;
pub mod session;
pub mod store;
pub mod store_api;

pub use config::{EmailConfig, ProviderConfig, ProviderKind, SignInConfig};
pub use endpoints::{check_session, AuthRequest, AuthResponse, SignIn};
pub use error::SignInError;

/// Sent to providers that want one (GitHub's API refuses requests without).
pub const USER_AGENT: &str = concat!("pylon-workers/", env!("CARGO_PKG_VERSION"));
