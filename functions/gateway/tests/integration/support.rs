//! The gateway router for the tests, with its downstream services at given URLs, and
//! what its health answer says.

use axum::Router;
use serde_json::{Value, json};
use testkit::config;
use testkit::http::{fetch, read, spec_health};

/// The gateway router with both downstream services at the given base URLs.
pub fn gateway(auth: &str, users: &str, extra: &[(&str, &str)]) -> Router {
    let mut pairs = vec![("AUTH_SERVICE_URL", auth), ("USER_SERVICE_URL", users)];
    pairs.extend_from_slice(extra);
    gateway::router(gateway::AppState::from_config(&config(&pairs)).unwrap())
}

/// The gateway router configured by `pairs` alone: no service URL unless they name one.
pub fn gateway_with(pairs: &[(&str, &str)]) -> Router {
    gateway::router(gateway::AppState::from_config(&config(pairs)).unwrap())
}

/// The health answer of the gateway at `url` for `GET path` (`/` or `/api`): asserts
/// a 200 JSON and returns its body.
pub async fn health(url: &str, path: &str) -> Value {
    let (status, _, body) = read(fetch("GET", &format!("{url}{path}"), &[]).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Asserts that a health `body` is the spec's, in the spec's key order, plus both
/// services up and both breakers closed.
pub fn assert_spec_health_with_both_services_up(mut body: Value) {
    assert_eq!(body["downstream"], json!({"auth": "ok", "users": "ok"}));
    body.as_object_mut().unwrap().shift_remove("downstream");
    assert_eq!(
        body.as_object_mut().unwrap().shift_remove("breakers"),
        Some(json!({"auth": "closed", "users": "closed"}))
    );
    assert_eq!(body.to_string(), spec_health().to_string());
}
