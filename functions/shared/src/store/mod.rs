//! Store traits, one per owner, and the types they speak in.

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod memory;
pub mod rotation;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::config::{ConfigError, StoreKind};
use crate::domain::{Email, Username};
use crate::refresh::TokenHash;
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

/// A refresh token as stored: its hash, never the token itself. Every token a login
/// starts belongs to one family, and each refresh adds the next member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub hash: TokenHash,
    pub family: Uuid,
    pub user_id: Uuid,
    pub username: String,
    /// Epoch seconds; the token is refused from then on.
    pub expires_at: i64,
    /// Retired by a refresh: presenting it again is reuse.
    pub used: bool,
}

/// What came of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The presented token is now retired; this is its successor in the same family.
    Rotated(RefreshRecord),
    /// Unknown, expired, or its family has been revoked.
    Refused,
    /// The token had already been retired: its whole family is now revoked.
    Reused { family: Uuid },
}

/// Who a login or registration attempt is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttemptKey {
    /// The username tried, as its lowercased key; build it with [`AttemptKey::user`].
    User(String),
    /// The client address the attempt came from.
    Ip(IpAddr),
    /// Registrations attempted from a client address (counted by `/register`, apart
    /// from its login attempts).
    Register(IpAddr),
}

impl AttemptKey {
    /// The key of `username`, the same in any case.
    pub fn user(username: &Username) -> Self {
        Self::User(username.key())
    }
}

/// A counter of login attempts after counting one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts in the current window, this one included.
    pub count: u64,
    /// Epoch seconds at which the window closes and the count starts again.
    pub window_ends_at: i64,
}

/// Refresh tokens and their families, owned by the auth function. Times are epoch
/// seconds, and a record whose time has passed counts as absent even before the
/// store's TTL removes it.
#[async_trait]
pub trait RefreshStore: Send + Sync {
    /// Stores the first token of a new family.
    async fn put_refresh(&self, record: &RefreshRecord) -> Result<(), Error>;

    /// The stored token with this hash, used or not, expired or not.
    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error>;

    /// Retires `presented` and stores `next` (expiring at `next_expires_at`) in its
    /// family, in one atomic step, as [`rotation::rotation_step`] decides. Presenting a
    /// retired token revokes its family until `next_expires_at`, which outlives every
    /// member.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation, Error>;

    /// Refuses every token of `family` from now until `until`.
    async fn revoke_family(&self, family: Uuid, until: i64) -> Result<(), Error>;
}

/// Access-token revocations: written by auth's logout, read by auth and by the users
/// function, which holds nothing else of the security table. Times are epoch seconds.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Refuses the access token with this `jti` until `until` (its `exp`).
    async fn revoke_access(&self, jti: &str, until: i64) -> Result<(), Error>;

    /// Whether the access token with this `jti` has been revoked (a consistent read).
    async fn is_access_revoked(&self, jti: &str, now: i64) -> Result<bool, Error>;
}

/// Login- and registration-attempt counters, owned by the auth function. Times are epoch seconds, and a
/// window that has closed counts as absent even before the store's TTL removes it.
#[async_trait]
pub trait LoginAttemptStore: Send + Sync {
    /// Counts one attempt against `key`. A window opens at the first attempt and lasts
    /// `window`; when it has closed, counting starts again at 1.
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error>;

    /// Takes back one attempt counted in the still-open window, if there is one.
    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error>;

    /// Forgets every attempt counted against `key`.
    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error>;
}

/// The stores `config` asks for (`STORE`); on DynamoDB they share one client, and the
/// last three share the security table.
#[derive(Clone)]
pub struct Stores {
    pub accounts: Arc<dyn AccountStore>,
    pub profiles: Arc<dyn ProfileStore>,
    pub refresh: Arc<dyn RefreshStore>,
    pub revocations: Arc<dyn RevocationStore>,
    pub attempts: Arc<dyn LoginAttemptStore>,
}

impl Stores {
    pub async fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match config.store.kind {
            StoreKind::Memory => Ok(Self::memory()),
            #[cfg(feature = "dynamodb")]
            StoreKind::Dynamodb => Ok(Self::dynamodb(dynamodb::client(config).await, config)),
            #[cfg(not(feature = "dynamodb"))]
            StoreKind::Dynamodb => Err(ConfigError(
                "STORE=dynamodb: this binary was built without the `dynamodb` feature of shared"
                    .into(),
            )),
        }
    }

    /// Fresh, empty in-memory stores.
    pub fn memory() -> Self {
        Self {
            accounts: Arc::new(memory::MemoryAccountStore::new()),
            profiles: Arc::new(memory::MemoryProfileStore::new()),
            refresh: Arc::new(memory::MemoryRefreshStore::new()),
            revocations: Arc::new(memory::MemoryRevocationStore::new()),
            attempts: Arc::new(memory::MemoryLoginAttemptStore::new()),
        }
    }

    /// The DynamoDB stores on `config`'s tables, all through `client`.
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(client: aws_sdk_dynamodb::Client, config: &Config) -> Self {
        let tables = &config.store.tables;
        let security = &tables.security;
        Self {
            accounts: Arc::new(dynamodb::DynamoAccountStore::new(
                client.clone(),
                &tables.accounts,
            )),
            profiles: Arc::new(dynamodb::DynamoProfileStore::new(
                client.clone(),
                &tables.profiles,
            )),
            refresh: Arc::new(dynamodb::DynamoRefreshStore::new(client.clone(), security)),
            revocations: Arc::new(dynamodb::DynamoRevocationStore::new(
                client.clone(),
                security,
            )),
            attempts: Arc::new(dynamodb::DynamoLoginAttemptStore::new(client, security)),
        }
    }
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
