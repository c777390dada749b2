//! Sign-in's routes, `/v1/auth/…` (docs/sign-in.md, Endpoints). They
//! answer 500 until sign-in is configured (its vars and secrets).

use super::access::Access;
use super::operation::{Answer, Body, Fail, OpSpec, Tag};

pub const ROUTES: &[OpSpec<'static>] = &[
    OpSpec::get(
        "/v1/auth/oauth/{provider}/start",
        "oauthStart",
        Tag::SignIn,
        Access::Public,
    )
    .summary("Start an OAuth sign-in: a redirect to the provider")
    .detail("Sets the `pylon_oauth` cookie (state, PKCE verifier, nonce, redirect).")
    .query(&["redirect"])
    .ok(&[Answer::Response(302, "Redirect")])
    .fails(&[Fail::BadRequest, Fail::NotFound]),
    OpSpec::get(
        "/v1/auth/oauth/{provider}/callback",
        "oauthCallback",
        Tag::SignIn,
        Access::Public,
    )
    .summary("The provider's callback: a redirect to the target, with session cookies")
    .query(&["code", "state"])
    .ok(&[Answer::Response(302, "Redirect")])
    .fails(&[Fail::BadRequest, Fail::NotFound, Fail::BadGateway]),
    OpSpec::post(
        "/v1/auth/email/start",
        "emailStart",
        Tag::SignIn,
        Access::Public,
    )
    .summary("Email a sign-in link and code")
    .detail("202 for any well-formed address, whether or not it can receive email.")
    .body(Body::Required("EmailStart"))
    .ok(&[Answer::Json(202, "Ok")])
    .fails(&[Fail::BadRequest, Fail::BadGateway]),
    OpSpec::get(
        "/v1/auth/email/verify",
        "emailVerifyLink",
        Tag::SignIn,
        Access::Public,
    )
    .summary("The emailed link: a redirect to the target given at start, with session cookies")
    .query(&["emailToken"])
    .ok(&[Answer::Response(302, "Redirect")])
    .fails(&[Fail::BadRequest]),
    OpSpec::post(
        "/v1/auth/email/verify",
        "emailVerify",
        Tag::SignIn,
        Access::Public,
    )
    .summary("Sign in with the emailed code: tokens, and session cookies")
    .body(Body::Required("EmailVerify"))
    .ok(&[Answer::Json(200, "Tokens")])
    .fails(&[Fail::BadRequest]),
    OpSpec::post("/v1/auth/refresh", "refresh", Tag::SignIn, Access::Public)
        .summary("New tokens for a refresh token (rotated; a reused one revokes its session)")
        .detail(
            "The refresh token in the body, or the `pylon_refresh` cookie with the CSRF \
             header; with the cookie, new cookies and no `refresh_token` in the body.",
        )
        .body(Body::Optional("RefreshRequest"))
        .ok(&[Answer::Json(200, "Tokens")])
        .fails(&[Fail::BadRequest, Fail::Unauthorized, Fail::Forbidden]),
    OpSpec::post(
        "/v1/auth/logout",
        "logout",
        Tag::SignIn,
        Access::SessionOrRefreshToken,
    )
    .summary("End the session: revokes it and clears the cookies")
    .body(Body::Optional("RefreshRequest"))
    .ok(&[Answer::Json(200, "LoggedOut")])
    .fails(&[Fail::BadRequest, Fail::Forbidden]),
    OpSpec::get("/v1/auth/session", "session", Tag::SignIn, Access::Session)
        .summary("The caller's session")
        .ok(&[Answer::Json(200, "Session")]),
];
