//! Tokens of an ended session (logout, `DELETE /sessions/{id}`, reuse, a password
//! change elsewhere, a deleted account): refused in local auth mode by reading the
//! session, and in remote mode by auth's `/validate`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use uuid::Uuid;

use errors::Error;
use stores::{LiveSession, Liveness, SessionCheck, Stores};
use testkit::*;
use users::Authenticator;

use crate::support::*;

#[tokio::test]
async fn a_token_of_an_ended_session_is_401_on_every_protected_route() {
    let (app, revoked) = app_with_alices_profile().await;
    end_session_of(app.sessions.as_ref(), &revoked).await;
    app.assert_every_protected_route(Some(&revoked), invalid_token())
        .await;
    let other = app.token(ALICE, "alice");
    let reply = app.get(&format!("/users/{ALICE}"), &other).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "another token of alice is fine"
    );
}

/// A session store whose server is down.
struct DownStore;

#[async_trait]
impl SessionCheck for DownStore {
    async fn check_session(
        &self,
        _: Uuid,
        _: Uuid,
        _: i64,
    ) -> Result<Result<LiveSession, Liveness>, Error> {
        Err(Error::unavailable("security table: connection refused"))
    }
}

#[tokio::test]
async fn when_sessions_cannot_be_read_a_token_is_not_trusted_503() {
    let app = TestApp::with_auth(Authenticator::local(tokens(), Arc::new(DownStore)));
    let token = app
        .tokens
        .issue(Uuid::parse_str(ALICE).unwrap(), "alice", Uuid::new_v4())
        .unwrap()
        .token;
    let unavailable = error(503, "Service temporarily unavailable");
    app.assert_every_protected_route(Some(&token), (StatusCode::SERVICE_UNAVAILABLE, unavailable))
        .await;
    let health = app.call(Method::GET, "/", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn in_remote_mode_a_token_of_a_session_ended_at_auth_is_refused() {
    let stores = Stores::memory();
    let url = serve_auth(&stores).await;

    let app = TestApp::with_auth(remote(&url, Duration::from_secs(5)));
    let alice = Uuid::parse_str(ALICE).unwrap();
    let token = signed_in(&stores, &app.tokens, alice, "alice").await;
    let reply = app.get("/users", &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    end_session_of(stores.sessions.as_ref(), &token).await;
    let token = signed_in(&stores, &app.tokens, alice, "alice").await;
    end_session_of(stores.sessions.as_ref(), &token).await;
    assert_eq!(app.get("/users", &token).await, invalid_token());
    assert_eq!(
        Authenticator::REMOTE_CACHE_TTL,
        Duration::from_secs(30),
        "the documented bound on how long a cached answer can hide a revocation"
    );
}
