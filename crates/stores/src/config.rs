//! Where the data lives: `STORE`, the three table names and `DYNAMODB_ENDPOINT`.

use settings::{ConfigError, HttpClientConfig, ReadConfig, Vars};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    #[default]
    Memory,
    Dynamodb,
}

/// Where the data lives: `STORE`, the three table names and `DYNAMODB_ENDPOINT`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub tables: Tables,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub accounts: String,
    pub profiles: String,
    /// Refresh tokens, revocations and login-failure counters (`SECURITY_TABLE`).
    pub security: String,
}

impl Default for Tables {
    fn default() -> Self {
        Self {
            accounts: "accounts".into(),
            profiles: "profiles".into(),
            security: "security".into(),
        }
    }
}

impl StoreConfig {
    pub fn read(vars: &Vars) -> Result<Self, ConfigError> {
        let default = Tables::default();
        let table = |key: &str, default: String| vars.get(key).unwrap_or(default);
        Ok(Self {
            kind: vars.choice(
                "STORE",
                [
                    ("memory", StoreKind::Memory),
                    ("dynamodb", StoreKind::Dynamodb),
                ],
            )?,
            tables: Tables {
                accounts: table("ACCOUNTS_TABLE", default.accounts),
                profiles: table("PROFILES_TABLE", default.profiles),
                security: table("SECURITY_TABLE", default.security),
            },
            endpoint: vars.get("DYNAMODB_ENDPOINT"),
        })
    }
}

/// What the stores read of a binary's configuration: where the data lives, and the
/// bounds of an outbound call (`CONNECT_TIMEOUT_MS`, `REQUEST_TIMEOUT_MS`) for DynamoDB.
pub trait StoreSettings {
    fn store(&self) -> &StoreConfig;
    fn timeouts(&self) -> &HttpClientConfig;
}

/// The stores' share of a configuration on its own, for what runs stores and nothing
/// else (tools, the stores' own tests).
#[derive(Debug, Clone, Default)]
pub struct StoreAccess {
    pub store: StoreConfig,
    pub http: HttpClientConfig,
}

impl ReadConfig for StoreAccess {
    fn read(vars: &Vars) -> Result<Self, ConfigError> {
        Ok(Self {
            store: StoreConfig::read(vars)?,
            http: HttpClientConfig::read(vars)?,
        })
    }
}

impl StoreSettings for StoreAccess {
    fn store(&self) -> &StoreConfig {
        &self.store
    }

    fn timeouts(&self) -> &HttpClientConfig {
        &self.http
    }
}
