//! The users function's configuration: tokens, stores, how tokens are checked, and
//! who sees a profile's email.

use outbound::breaker::BreakerConfig;
use outbound::config::Services;
use settings::{ConfigError, HttpClientConfig, ReadConfig, Vars};
use stores::config::StoreConfig;
use tokens::config::TokenConfig;

/// What the users function reads at cold start: only the parts it uses.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub tokens: TokenConfig,
    pub store: StoreConfig,
    pub services: Services,
    /// Outbound timeouts: DynamoDB's, and auth's in remote mode.
    pub http: HttpClientConfig,
    /// The circuit breaker on calls to auth in remote mode.
    pub breaker: BreakerConfig,
    /// Who sees a profile's `email`.
    pub profile_emails: ProfileEmails,
}

impl ReadConfig for Config {
    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            tokens: TokenConfig::read(vars)?,
            store: StoreConfig::read(vars)?,
            services: Services::read(vars)?,
            http: HttpClientConfig::read(vars)?,
            breaker: BreakerConfig::read(vars)?,
            profile_emails: ProfileEmails::read(vars)?,
        })
    }
}

/// Who sees a profile's `email` (`PROFILE_EMAILS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProfileEmails {
    /// Every signed-in account reads every profile's email, as the seed's contract has
    /// it: a deliberate default, so that clients written for the seed keep working.
    #[default]
    All,
    /// A profile's email is shown to its owner only; others read `null`.
    Owner,
}

impl ProfileEmails {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        vars.choice(
            "PROFILE_EMAILS",
            [("all", ProfileEmails::All), ("owner", ProfileEmails::Owner)],
        )
    }
}

impl stores::config::StoreSettings for Config {
    fn store(&self) -> &StoreConfig {
        &self.store
    }

    fn timeouts(&self) -> &HttpClientConfig {
        &self.http
    }
}
