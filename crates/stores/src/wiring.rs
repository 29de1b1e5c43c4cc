//! Which implementation each store is: all in memory, or all on DynamoDB's tables
//! through one client (`STORE`).

use std::sync::Arc;

use settings::ConfigError;

use crate::config::{StoreKind, StoreSettings};
#[cfg(feature = "dynamodb")]
use crate::dynamodb;
use crate::memory;
use crate::{
    AccountStore, CrossTableWrites, KeyStore, LoginAttemptStore, MailTokenStore, ProfileStore,
    SessionCheck, SessionStore,
};

/// The stores `config` asks for (`STORE`); on DynamoDB they share one client, and
/// `sessions`, `checks`, `attempts`, `keys` and `mail_tokens` share the security table
/// (`sessions` and `checks` are one store); `cross_table` writes all three tables.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub profiles: Arc<dyn ProfileStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub checks: Arc<dyn SessionCheck>,
    pub cross_table: Arc<dyn CrossTableWrites>,
    pub mail_tokens: Arc<dyn MailTokenStore>,
    pub attempts: Arc<dyn LoginAttemptStore>,
    pub keys: Arc<dyn KeyStore>,
}

impl Stores {
    /// The stores `config` names. On DynamoDB this also starts opening the client's
    /// connection in the background ([`dynamodb::warm_up`]), so the process's first
    /// request does not wait for the TCP and TLS handshakes.
    pub async fn from_config(config: &impl StoreSettings) -> Result<Self, ConfigError> {
        match config.store().kind {
            StoreKind::Memory => Ok(Self::memory()),
            #[cfg(feature = "dynamodb")]
            StoreKind::Dynamodb => {
                let client = dynamodb::client(config).await;
                dynamodb::warm_up(&client, &config.store().tables.security);
                Ok(Self::dynamodb(client, config))
            }
            #[cfg(not(feature = "dynamodb"))]
            StoreKind::Dynamodb => Err(ConfigError(
                "STORE=dynamodb: this binary was built without the `dynamodb` feature of shared"
                    .into(),
            )),
        }
    }

    /// Fresh, empty in-memory stores.
    pub fn memory() -> Self {
        let tables = memory::MemoryTables::new();
        let attempts = Arc::new(memory::MemoryLoginAttemptStore::new());
        let sessions = Arc::new(memory::MemorySessionStore::over(
            tables.clone(),
            attempts.clone(),
        ));
        Self {
            accounts: Arc::new(memory::MemoryAccountStore::over(tables.clone())),
            profiles: Arc::new(memory::MemoryProfileStore::over(tables.clone())),
            sessions: sessions.clone(),
            checks: sessions,
            cross_table: Arc::new(memory::MemoryCrossTableWrites::over(tables.clone())),
            mail_tokens: Arc::new(memory::MemoryMailTokenStore::over(tables)),
            attempts,
            keys: Arc::new(memory::MemoryKeyStore::default()),
        }
    }

    /// The DynamoDB stores on `config`'s tables, all through `client`.
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(client: aws_sdk_dynamodb::Client, config: &impl StoreSettings) -> Self {
        let tables = &config.store().tables;
        let security = &tables.security;
        let sessions = Arc::new(dynamodb::DynamoSessionStore::new(client.clone(), tables));
        Self {
            accounts: Arc::new(dynamodb::DynamoAccountStore::new(
                client.clone(),
                &tables.accounts,
            )),
            profiles: Arc::new(dynamodb::DynamoProfileStore::new(client.clone(), tables)),
            sessions: sessions.clone(),
            checks: sessions,
            cross_table: Arc::new(dynamodb::DynamoCrossTableWrites::new(
                client.clone(),
                tables,
            )),
            attempts: Arc::new(dynamodb::DynamoLoginAttemptStore::new(
                client.clone(),
                security,
            )),
            mail_tokens: Arc::new(dynamodb::DynamoMailTokenStore::new(
                client.clone(),
                security,
            )),
            keys: Arc::new(dynamodb::DynamoKeyStore::new(client, security)),
        }
    }
}
