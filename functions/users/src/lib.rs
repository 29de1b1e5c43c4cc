//! The users function: profile CRUD behind bearer tokens, each user owning their own.

mod auth;
pub mod config;
mod handlers;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;

use outbound::config::AuthMode;

use settings::ConfigError;

pub use crate::config::Config;
use crate::config::ProfileEmails;
use stores::{ProfileStore, Stores};

pub use auth::{AuthUser, Authenticator};
pub use handlers::{
    DEFAULT_LIMIT, MAX_BIO_CHARS, MAX_FULL_NAME_CHARS, MAX_LIMIT, MAX_PAGE_BYTES, NEXT_CURSOR,
};

/// What the users handlers share.
#[derive(Clone)]
pub struct AppState {
    pub profiles: Arc<dyn ProfileStore>,
    pub auth: Authenticator,
    /// Who reads a profile's `email` (`PROFILE_EMAILS`).
    pub emails: ProfileEmails,
}

impl AppState {
    /// Every profile's email shown to every signed-in account, as the seed has it.
    pub fn new(profiles: Arc<dyn ProfileStore>, auth: Authenticator) -> Self {
        Self {
            profiles,
            auth,
            emails: ProfileEmails::All,
        }
    }

    /// The same state showing emails as `emails` says.
    pub fn with_profile_emails(self, emails: ProfileEmails) -> Self {
        Self { emails, ..self }
    }

    /// The state a deployed function runs with: everything from `config`. In local
    /// auth mode tokens are checked with `JWT_SECRET` (HS256) when set, else with the
    /// public keys auth published (EdDSA; users holds no key that could sign), and
    /// sessions in the security table.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let stores = Stores::from_config(config).await?;
        let auth = match config.services.auth_mode {
            AuthMode::Local => Authenticator::local(
                Arc::new(config.tokens.verifier(stores.keys.clone())?),
                stores.checks,
            ),
            AuthMode::Remote => Authenticator::remote_from_config(config)?,
        };
        Ok(Self::new(stores.profiles, auth).with_profile_emails(config.profile_emails))
    }
}

impl FromRef<AppState> for Authenticator {
    fn from_ref(state: &AppState) -> Self {
        state.auth.clone()
    }
}

/// Every (method, path) [`router`] serves, at `/` and under `/api`; the router's own
/// tests hold it to this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("GET", "/users/{id}"),
    ("PUT", "/users/{id}"),
    ("DELETE", "/users/{id}"),
];

/// The spec's user-service routes, at `/` and under `/api`.
///
/// `GET /users` takes `?limit=` (1 to 1000, default 100) and `?cursor=`; when more
/// profiles remain it answers the next page's cursor in the `X-Next-Cursor` header.
pub fn router(state: AppState) -> Router {
    let routes = edge::http::Routes::new()
        .route("/", get(handlers::health))
        .route("/users", get(handlers::list).post(handlers::create))
        .route(
            "/users/{id}",
            get(handlers::get_one)
                .put(handlers::update)
                .delete(handlers::delete),
        )
        .with_state(state);
    edge::http::finish("users", routes)
}
