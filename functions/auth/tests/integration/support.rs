//! What the auth tests share beyond `shared::testing`: an auth app over fresh
//! in-memory stores.

use axum::Router;

use shared::store::Stores;
use shared::testing::{config, tokens};
use shared::Config;

/// An auth state over fresh in-memory stores, configured by `config`.
pub fn state_with(config: &Config) -> auth::AppState {
    auth::AppState::new(&Stores::memory(), tokens(), config)
}

/// An auth router over fresh in-memory stores, hashing at bcrypt's lowest cost.
pub fn app() -> Router {
    auth::router(state_with(&config(&[])))
}
