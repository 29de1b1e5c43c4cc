//! Tokens revoked by a logout: refused in local auth mode by reading the revocation
//! record, and in remote mode by auth's `/validate`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use tokio::net::TcpListener;
use uuid::Uuid;

use shared::config::HttpClientConfig;
use shared::store::memory::{MemoryProfileStore, MemoryRevocationStore};
use shared::store::{RevocationStore, Stores};
use shared::testing::*;
use shared::Error;
use users::{AppState, Authenticator};

use crate::support::*;

async fn revoke(revocations: &dyn RevocationStore, app: &TestApp, token: &str) {
    let claims = app.tokens.verify(token).unwrap();
    revocations
        .revoke_access(&claims.jti, claims.exp)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_revoked_token_is_401_on_every_protected_route() {
    let app = app();
    app.create(ALICE, "alice").await;
    let revoked = app.token(ALICE, "alice");
    revoke(app.revocations.as_ref(), &app, &revoked).await;
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

/// A revocation store whose server is down.
struct DownStore;

#[async_trait]
impl RevocationStore for DownStore {
    async fn revoke_access(&self, _: &str, _: i64) -> Result<(), Error> {
        Err(Error::unavailable("security table: connection refused"))
    }
    async fn is_access_revoked(&self, _: &str, _: i64) -> Result<bool, Error> {
        Err(Error::unavailable("security table: connection refused"))
    }
}

#[tokio::test]
async fn when_revocations_cannot_be_read_a_token_is_not_trusted_503() {
    let tokens = tokens();
    let router = users::router(AppState::new(
        Arc::new(MemoryProfileStore::new()),
        Authenticator::local(tokens.clone(), Arc::new(DownStore)),
    ));
    let token = tokens
        .issue(Uuid::parse_str(ALICE).unwrap(), "alice")
        .unwrap()
        .token;
    let app = TestApp {
        router,
        store: Arc::new(MemoryProfileStore::new()),
        tokens,
        revocations: Arc::new(MemoryRevocationStore::new()),
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
async fn in_remote_mode_a_token_revoked_at_auth_is_refused() {
    let revocations = Arc::new(MemoryRevocationStore::new());
    let stores = Stores {
        revocations: revocations.clone(),
        ..Stores::memory()
    };
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
    let app = TestApp {
        router: users::router(AppState::new(store.clone(), remote)),
        store,
        tokens: tokens(),
        revocations: revocations.clone(),
    };
    let token = app.token(ALICE, "alice");
    revoke(revocations.as_ref(), &app, &token).await;
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
