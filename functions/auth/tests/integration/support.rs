//! What the auth tests share beyond `testkit`: an auth app over fresh
//! in-memory stores.

use axum::Router;

use auth::Config;
use stores::Stores;
use testkit::{config, tokens};

/// An auth state over fresh in-memory stores, configured by `config`.
pub fn state_with(config: &Config) -> auth::AppState {
    auth::AppState::new(&Stores::memory(), tokens(), config)
}

/// An auth router over fresh in-memory stores, hashing at bcrypt's lowest cost.
pub fn app() -> Router {
    auth::router(state_with(&config(&[])))
}
