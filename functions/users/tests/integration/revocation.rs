//! Tokens of an ended session (logout, `DELETE /sessions/{id}`, reuse, a password
//! change elsewhere, a deleted account): refused in local auth mode by reading the
//! session, and in remote mode by auth's `/validate`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use tokio::net::TcpListener;
use uuid::Uuid;

use errors::Error;
use settings::HttpClientConfig;
use stores::memory::MemoryProfileStore;
use stores::{LiveSession, Liveness, SessionCheck, SessionStore, Stores};
use testkit::*;
use users::{AppState, Authenticator};

use crate::support::*;

/// Ends the session of `token`.
async fn end(sessions: &dyn SessionStore, app: &TestApp, token: &str) {
    let claims = app.tokens.verify(token).unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        sessions
            .end_session(Some(claims.user_id()), claims.session_id(), now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_token_of_an_ended_session_is_401_on_every_protected_route() {
    let app = app();
    app.create(ALICE, "alice").await;
    let revoked = app.token(ALICE, "alice");
    end(app.sessions.as_ref(), &app, &revoked).await;
    for (method, path, body) in protected_routes() {
        let reply = app.call(method.clone(), &path, Some(&revoked), body).await;
        assert_eq!(
            (reply.status, reply.body),
            (
                StatusCode::UNAUTHORIZED,
                error(401, "Invalid or expired token")
            ),
            "{method} {path}"
        );
    }
    let other = app.token(ALICE, "alice");
    let reply = app
        .call(Method::GET, &format!("/users/{ALICE}"), Some(&other), None)
        .await;
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
    let tokens = tokens();
    let router = users::router(AppState::new(
        Arc::new(MemoryProfileStore::new()),
        Authenticator::local(tokens.clone(), Arc::new(DownStore)),
    ));
    let token = tokens
        .issue(Uuid::parse_str(ALICE).unwrap(), "alice", Uuid::new_v4())
        .unwrap()
        .token;
    let store = Arc::new(MemoryProfileStore::new());
    let (accounts, sessions) = sessions(&store);
    let app = TestApp {
        router,
        accounts,
        sessions,
        store,
        tokens,
    };
    for (method, path, body) in protected_routes() {
        let reply = app.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(
            (reply.status, reply.body),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                error(503, "Service temporarily unavailable")
            ),
            "{method} {path}"
        );
    }
    let health = app.call(Method::GET, "/", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

#[tokio::test]
async fn in_remote_mode_a_token_of_a_session_ended_at_auth_is_refused() {
    let stores = Stores::memory();
    let config = config(&[]);
    let auth = auth::router(auth::AppState::new(&stores, tokens(), &config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, auth).await.unwrap() });

    let store = Arc::new(MemoryProfileStore::new());
    let remote = Authenticator::remote(
        &url.parse().unwrap(),
        &HttpClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
    let (accounts, sessions) = sessions(&store);
    let app = TestApp {
        router: users::router(AppState::new(store.clone(), remote)),
        accounts,
        sessions,
        store,
        tokens: tokens(),
    };
    let token = signed_in(
        &stores,
        &app.tokens,
        Uuid::parse_str(ALICE).unwrap(),
        "alice",
    )
    .await;
    let reply = app.call(Method::GET, "/users", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    end(stores.sessions.as_ref(), &app, &token).await;
    let token = signed_in(
        &stores,
        &app.tokens,
        Uuid::parse_str(ALICE).unwrap(),
        "alice",
    )
    .await;
    end(stores.sessions.as_ref(), &app, &token).await;
    let reply = app.call(Method::GET, "/users", Some(&token), None).await;
    assert_eq!(
        (reply.status, reply.body),
        (
            StatusCode::UNAUTHORIZED,
            error(401, "Invalid or expired token")
        )
    );
    assert_eq!(
        Authenticator::REMOTE_CACHE_TTL,
        Duration::from_secs(30),
        "the documented bound on how long a cached answer can hide a revocation"
    );
}
