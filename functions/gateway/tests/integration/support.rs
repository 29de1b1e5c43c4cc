//! The gateway router for the tests, with its downstream services at given URLs.

use axum::Router;
use testkit::config;

/// The gateway router with both downstream services at the given base URLs.
pub fn gateway(auth: &str, users: &str, extra: &[(&str, &str)]) -> Router {
    let mut pairs = vec![("AUTH_SERVICE_URL", auth), ("USER_SERVICE_URL", users)];
    pairs.extend_from_slice(extra);
    gateway::router(gateway::AppState::from_config(&config(&pairs)).unwrap())
}
