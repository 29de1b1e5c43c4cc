//! Helpers for the auth tests: a fast-hashing app and one-shot requests.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use shared::config::Secret;
use shared::store::Stores;
use shared::token::Tokens;
use shared::Config;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

pub fn tokens() -> Arc<Tokens> {
    Arc::new(
        Tokens::new(
            &Secret::new(SECRET.into()).unwrap(),
            Duration::from_secs(86400),
        )
        .unwrap(),
    )
}

/// The default configuration with bcrypt's lowest cost and `extra` on top.
pub fn config(extra: &[(&str, &str)]) -> Config {
    let vars: std::collections::HashMap<&str, &str> = [("BCRYPT_COST", "4")]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned())).unwrap()
}

/// An auth state over fresh in-memory stores, configured by `config`.
pub fn state_with(config: &Config) -> auth::AppState {
    auth::AppState::new(&Stores::memory(), tokens(), config)
}

/// An auth router over fresh in-memory stores, hashing at bcrypt's lowest cost.
pub fn app() -> Router {
    auth::router(state_with(&config(&[])))
}

pub async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        content_type.starts_with("application/json"),
        "every answer is JSON, got {content_type:?} for {status}: {bytes:?}"
    );
    (status, serde_json::from_slice(&bytes).unwrap())
}

pub async fn post(app: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(app, request).await
}

pub async fn get(app: &Router, path: &str) -> (StatusCode, Value) {
    send(app, Request::get(path).body(Body::empty()).unwrap()).await
}

pub fn error(status: u16, message: &str) -> Value {
    json!({"status": status.to_string(), "message": message})
}

pub async fn register(
    app: &Router,
    username: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Value) {
    post(
        app,
        "/register",
        json!({"username": username, "email": email, "password": password}),
    )
    .await
}

pub async fn login(app: &Router, username: &str, password: &str) -> (StatusCode, Value) {
    post(
        app,
        "/login",
        json!({"username": username, "password": password}),
    )
    .await
}
