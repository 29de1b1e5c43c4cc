//! Helpers for the users tests: an app over an in-memory store, tokens for any user,
//! and one-shot requests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use uuid::Uuid;

use shared::config::Secret;
use shared::store::memory::{MemoryProfileStore, MemoryRevocationStore};
use shared::token::{Claims, Tokens};
use users::{AppState, Authenticator};

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
pub const ALICE: &str = "550e8400-e29b-41d4-a716-446655440000";
pub const BOB: &str = "660e8400-e29b-41d4-a716-446655440001";

pub fn tokens() -> Arc<Tokens> {
    Arc::new(
        Tokens::new(
            &Secret::new(SECRET.into()).unwrap(),
            Duration::from_secs(86400),
        )
        .unwrap(),
    )
}

/// A users app checking tokens in-process, and its store for direct set-up.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<MemoryProfileStore>,
    pub tokens: Arc<Tokens>,
    pub revocations: Arc<MemoryRevocationStore>,
}

pub fn app() -> TestApp {
    let store = Arc::new(MemoryProfileStore::new());
    let revocations = Arc::new(MemoryRevocationStore::new());
    let tokens = tokens();
    let router = users::router(AppState::new(
        store.clone(),
        Authenticator::local(tokens.clone(), revocations.clone()),
    ));
    TestApp {
        router,
        store,
        tokens,
        revocations,
    }
}

impl TestApp {
    /// A valid token for `user_id`.
    pub fn token(&self, user_id: &str, username: &str) -> String {
        self.tokens
            .issue(Uuid::parse_str(user_id).unwrap(), username)
            .unwrap()
            .token
    }

    /// A correctly signed token that expired a minute ago.
    pub fn expired_token(&self, user_id: &str) -> String {
        let now = chrono::Utc::now().timestamp();
        self.tokens
            .sign(&Claims {
                sub: user_id.into(),
                username: "late".into(),
                iat: now - 3600,
                exp: now - 60,
                jti: Uuid::new_v4().to_string(),
            })
            .unwrap()
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        send(&self.router, request.unwrap()).await
    }

    /// Creates `user_id`'s profile as that user, asserting success.
    pub async fn create(&self, user_id: &str, username: &str) -> Value {
        let token = self.token(user_id, username);
        let reply = self
            .call(
                Method::POST,
                "/users",
                Some(&token),
                Some(profile_json(user_id, username)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }
}

pub fn profile_json(user_id: &str, username: &str) -> Value {
    json!({
        "user_id": user_id,
        "username": username,
        "email": format!("{username}@example.com"),
        "full_name": format!("{username} Smith"),
        "bio": "Software developer passionate about Rust"
    })
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        content_type.starts_with("application/json"),
        "every answer is JSON, got {content_type:?} for {status}: {bytes:?}"
    );
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

pub fn error(status: u16, message: &str) -> Value {
    json!({"status": status.to_string(), "message": message})
}
