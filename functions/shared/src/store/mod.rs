//! Store traits, one per owner, and the types they speak in.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod memory;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::{ConfigError, StoreKind};
use crate::domain::{Email, Username};
use crate::{Config, Error};

/// A registered user's credentials.
#[derive(Clone)]
pub struct Account {
    pub user_id: Uuid,
    pub username: Username,
    pub email: Email,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &"<redacted>")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Credentials, owned by the auth function.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Creates the account in one atomic step. A taken username gives
    /// [`Error::UsernameTaken`] (checked first), a taken email [`Error::EmailTaken`].
    async fn create(&self, account: &Account) -> Result<(), Error>;

    /// The account whose username matches case-insensitively.
    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error>;
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub user_id: Uuid,
    pub username: String,
    pub email: String,
    pub full_name: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
}

/// The fields a partial update may change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfilePatch {
    pub full_name: Option<String>,
    pub bio: Option<String>,
}

/// One page of a listing and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

/// An opaque position in a listing: the last key of the page before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor(Uuid);

impl Cursor {
    const PREFIX: &'static str = "v1:";

    pub fn after(last: Uuid) -> Self {
        Self(last)
    }

    pub fn last_key(&self) -> Uuid {
        self.0
    }

    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{}", Self::PREFIX, self.0))
    }

    pub fn decode(raw: &str) -> Result<Self, Error> {
        let invalid = || Error::bad_request("Invalid cursor");
        if raw.len() > 128 {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
        let key = text.strip_prefix(Self::PREFIX).ok_or_else(invalid)?;
        Uuid::parse_str(key).map(Self).map_err(|_| invalid())
    }
}

/// Profiles, owned by the users function.
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// Creates the profile; [`Error::ProfileExists`] when one has its `user_id`.
    async fn create(&self, profile: &Profile) -> Result<(), Error>;

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error>;

    /// Changes only the fields present; [`Error::UserNotFound`] when there is no profile.
    async fn update(&self, user_id: Uuid, patch: &ProfilePatch) -> Result<Profile, Error>;

    /// [`Error::UserNotFound`] when there is no profile.
    async fn delete(&self, user_id: Uuid) -> Result<(), Error>;

    /// At most `limit` profiles in a stable order, starting after `after`.
    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error>;
}

/// The stores `config` asks for (`STORE`); on DynamoDB both share one client.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub profiles: Arc<dyn ProfileStore>,
}

impl Stores {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match config.store {
            StoreKind::Memory => Ok(Self {
                accounts: Arc::new(memory::MemoryAccountStore::new()),
                profiles: Arc::new(memory::MemoryProfileStore::new()),
            }),
            #[cfg(feature = "dynamodb")]
            StoreKind::Dynamodb => {
                let client = dynamodb::client(config).await;
                Ok(Self {
                    accounts: Arc::new(dynamodb::DynamoAccountStore::new(
                        client.clone(),
                        &config.accounts_table,
                    )),
                    profiles: Arc::new(dynamodb::DynamoProfileStore::new(
                        client,
                        &config.profiles_table,
                    )),
                })
            }
            #[cfg(not(feature = "dynamodb"))]
            StoreKind::Dynamodb => Err(ConfigError(
                "STORE=dynamodb: this binary was built without the `dynamodb` feature of shared"
                    .into(),
            )),
        }
    }
}

/// The account store `config` asks for, for the auth function.
pub async fn account_store(config: &Config) -> Result<Arc<dyn AccountStore>, ConfigError> {
    Ok(Stores::from_config(config).await?.accounts)
}

/// The profile store `config` asks for, for the users function.
pub async fn profile_store(config: &Config) -> Result<Arc<dyn ProfileStore>, ConfigError> {
    Ok(Stores::from_config(config).await?.profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor::after(Uuid::new_v4());
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let forged = URL_SAFE_NO_PAD.encode("v2:whatever");
        for bad in ["", "!!!", "djE6", &forged, &"A".repeat(200)] {
            assert!(Cursor::decode(bad).is_err(), "{bad:?}");
        }
    }
}
