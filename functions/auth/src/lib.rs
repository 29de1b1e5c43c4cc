//! The auth function: registration, login and token validation.

mod handlers;
mod passwords;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use shared::config::ConfigError;
use shared::store::AccountStore;
use shared::token::Tokens;
use shared::Config;

pub use passwords::Passwords;

/// What the auth handlers share.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<dyn AccountStore>,
    pub tokens: Arc<Tokens>,
    pub passwords: Passwords,
}

impl AppState {
    pub fn new(accounts: Arc<dyn AccountStore>, tokens: Arc<Tokens>, bcrypt_cost: u32) -> Self {
        Self {
            accounts,
            tokens,
            passwords: Passwords::new(bcrypt_cost),
        }
    }

    /// The state a deployed function runs with: everything from `config`.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let tokens = Tokens::new(config.require_jwt_secret()?, config.token_expiry)?;
        let accounts = shared::store::account_store(config).await?;
        Ok(Self::new(accounts, Arc::new(tokens), config.bcrypt_cost))
    }
}

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/", get(handlers::health))
        .route("/register", post(handlers::register))
        .route("/login", post(handlers::login))
        .route("/validate", post(handlers::validate))
        .with_state(state);
    shared::http::finish(routes)
}
