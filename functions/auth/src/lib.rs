//! The auth function: registration, login, token validation, refresh and logout, and
//! a signed-in user's sessions, password and account.

mod account;
pub mod config;
mod handlers;
mod keys;
mod limits;
mod passwords;
mod recovery;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{delete, get, post};

pub use crate::config::Config;
use crate::config::{EmailVerification, LoginLimits, MailLimits, RegisterLimits};
use edge::client_ip::TrustedProxies;
use mail::{Mailbox, Mailer, Mails};
use settings::ConfigError;
use stores::{
    AccountStore, CrossTableWrites, KeyStore, LoginAttemptStore, MailTokenStore, SessionCheck,
    SessionStore, Stores,
};
use tokens::Tokens;

pub use edge::client_ip::{ClientIp, client_ip};
pub use passwords::Passwords;

/// What the auth handlers share.
#[derive(Clone)]
pub struct AppState {
    pub accounts: Arc<dyn AccountStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub checks: Arc<dyn SessionCheck>,
    /// Password changes and account deletions, which span the tables.
    pub cross_table: Arc<dyn CrossTableWrites>,
    pub attempts: Arc<dyn LoginAttemptStore>,
    pub keys: Arc<dyn KeyStore>,
    /// Set once the signing key's public half is in `keys`, before the first token.
    pub published: Arc<tokio::sync::OnceCell<()>>,
    pub tokens: Arc<Tokens>,
    pub passwords: Passwords,
    pub login_limits: LoginLimits,
    pub register_limits: RegisterLimits,
    pub refresh_token_expiry: Duration,
    /// How long a retired refresh token may be presented again as a retried refresh.
    pub refresh_reuse_interval: Duration,
    /// Whose `X-Forwarded-For` names the client ([`ClientIp`]).
    pub trusted_proxies: Arc<TrustedProxies>,
    /// This API's public base URL, without a trailing slash, when configured
    /// (`PUBLIC_URL`): where the discovery document says the key set is.
    pub public_url: Option<Arc<str>>,
    /// The tokens of mailed links.
    pub mail_tokens: Arc<dyn MailTokenStore>,
    /// What sends mails, and the mails it sends.
    pub mailer: Arc<dyn Mailer>,
    pub mails: Mails,
    pub email_verification: EmailVerification,
    pub mail_limits: MailLimits,
    pub forgot_floor: Duration,
}

impl FromRef<AppState> for Arc<TrustedProxies> {
    fn from_ref(state: &AppState) -> Self {
        state.trusted_proxies.clone()
    }
}

impl AppState {
    /// The handlers' state over the stores of `stores` that auth uses, with the bcrypt
    /// cost and bound, login and registration limits, refresh-token lifetime and reuse
    /// interval, trusted proxies and public URL of `config`.
    pub fn new(stores: &Stores, tokens: Arc<Tokens>, config: &Config) -> Self {
        Self {
            accounts: stores.accounts.clone(),
            sessions: stores.sessions.clone(),
            checks: stores.checks.clone(),
            cross_table: stores.cross_table.clone(),
            attempts: stores.attempts.clone(),
            keys: stores.keys.clone(),
            published: Arc::default(),
            tokens,
            passwords: Passwords::limited(config.bcrypt_cost, config.hashing),
            login_limits: config.login_limits,
            register_limits: config.register_limits,
            refresh_token_expiry: config.tokens.refresh_ttl,
            refresh_reuse_interval: config.tokens.refresh_reuse_interval,
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            public_url: config
                .public_url
                .as_ref()
                .map(|url| url.as_str().trim_end_matches('/').into()),
            mail_tokens: stores.mail_tokens.clone(),
            mailer: Arc::new(Mailbox::new(&config.mail.from)),
            mails: config.mail.mails(),
            email_verification: config.email_verification,
            mail_limits: config.mail_limits,
            forgot_floor: config.forgot_floor,
        }
    }

    /// This state sending its mails through `mailer` (the local stack's mailbox, a
    /// test's).
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// The state a deployed function runs with: everything from `config`.
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        let stores = Stores::from_config(config).await?;
        let tokens = config.tokens.signer(stores.keys.clone())?.ok_or_else(|| {
            ConfigError(format!(
                "neither JWT_SIGNING_KEY nor JWT_SECRET is set: set JWT_SIGNING_KEY to a random \
                 string of at least {} bytes (EdDSA; verifiers need only the public key), or \
                 JWT_SECRET for HS256",
                settings::Secret::MIN_BYTES
            ))
        })?;
        let mailer = mail::mailer(&config.mail, &config.http).await?;
        Ok(Self::new(&stores, Arc::new(tokens), config).with_mailer(mailer))
    }
}

/// Every (method, path) [`router`] serves, at `/` and under `/api`; the router's own
/// tests hold it to this list.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("POST", "/register"),
    ("POST", "/login"),
    ("POST", "/validate"),
    ("POST", "/refresh"),
    ("POST", "/logout"),
    ("GET", "/sessions"),
    ("DELETE", "/sessions/{id}"),
    ("POST", "/password"),
    ("DELETE", "/account"),
    ("POST", "/email/verify"),
    ("POST", "/email/verify/resend"),
    ("POST", "/password/forgot"),
    ("POST", "/password/reset"),
    ("POST", "/email"),
    ("POST", "/email/confirm"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
];

pub fn router(state: AppState) -> Router {
    let routes = edge::http::Routes::new()
        .route("/", get(handlers::health))
        .route("/register", post(handlers::register))
        .route("/login", post(handlers::login))
        .route("/validate", post(handlers::validate))
        .route("/refresh", post(handlers::refresh))
        .route("/logout", post(handlers::logout))
        .route("/sessions", get(account::sessions))
        .route("/sessions/{id}", delete(account::end_session))
        .route("/password", post(account::change_password))
        .route("/account", delete(account::delete_account))
        .route("/email/verify", post(recovery::verify_email))
        .route("/email/verify/resend", post(recovery::resend_verification))
        .route("/password/forgot", post(recovery::forgot_password))
        .route("/password/reset", post(recovery::reset_password))
        .route("/email", post(recovery::change_email))
        .route("/email/confirm", post(recovery::confirm_email_change))
        .route("/.well-known/jwks.json", get(keys::jwks))
        .route("/.well-known/openid-configuration", get(keys::discovery))
        .with_state(state);
    edge::http::finish("auth", routes)
}
