//! In-memory stores: the embedded default for `local` and tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use uuid::Uuid;

use super::rotation::{rotation_step, RotationStep};
use super::{
    Account, AccountStore, AttemptKey, Attempts, Cursor, LoginAttemptStore, Page, Profile,
    ProfilePatch, ProfileStore, RefreshRecord, RefreshStore, RevocationStore, Rotation,
};
use crate::domain::Username;
use crate::refresh::TokenHash;
use crate::Error;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Default)]
struct Accounts {
    by_username: HashMap<String, Account>,
    email_owners: HashMap<String, Uuid>,
}

/// Accounts under one lock, so claiming a username and an email is one step.
#[derive(Default)]
pub struct MemoryAccountStore {
    inner: Mutex<Accounts>,
}

impl MemoryAccountStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn create(&self, account: &Account) -> Result<(), Error> {
        let mut accounts = lock(&self.inner);
        let username = account.username.key();
        let email = account.email.key();
        if accounts.by_username.contains_key(&username) {
            return Err(Error::UsernameTaken);
        }
        if accounts.email_owners.contains_key(&email) {
            return Err(Error::EmailTaken);
        }
        accounts.email_owners.insert(email, account.user_id);
        accounts.by_username.insert(username, account.clone());
        Ok(())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error> {
        Ok(lock(&self.inner).by_username.get(&username.key()).cloned())
    }
}

/// Profiles ordered by `user_id`, which is also the listing order.
#[derive(Default)]
pub struct MemoryProfileStore {
    inner: RwLock<BTreeMap<Uuid, Profile>>,
}

impl MemoryProfileStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ProfileStore for MemoryProfileStore {
    async fn create(&self, profile: &Profile) -> Result<(), Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if profiles.contains_key(&profile.user_id) {
            return Err(Error::ProfileExists);
        }
        profiles.insert(profile.user_id, profile.clone());
        Ok(())
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        let profiles = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Ok(profiles.get(&user_id).cloned())
    }

    async fn update(&self, user_id: Uuid, patch: &ProfilePatch) -> Result<Profile, Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let profile = profiles.get_mut(&user_id).ok_or(Error::UserNotFound)?;
        if let Some(full_name) = &patch.full_name {
            profile.full_name.clone_from(full_name);
        }
        if let Some(bio) = &patch.bio {
            profile.bio.clone_from(bio);
        }
        Ok(profile.clone())
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        let mut profiles = self.inner.write().unwrap_or_else(|p| p.into_inner());
        profiles
            .remove(&user_id)
            .map(|_| ())
            .ok_or(Error::UserNotFound)
    }

    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        let profiles = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let start = after.map_or(Bound::Unbounded, |c| Bound::Excluded(c.last_key()));
        let mut range = profiles.range((start, Bound::Unbounded));
        let items: Vec<Profile> = range.by_ref().take(limit).map(|(_, p)| p.clone()).collect();
        let more = range.next().is_some();
        let next = match items.last() {
            Some(last) if more => Some(Cursor::after(last.user_id)),
            _ => None,
        };
        Ok(Page { items, next })
    }
}

/// Counts writes so that expired entries are swept every so many of them.
#[derive(Default)]
struct Sweeps {
    writes: u64,
}

impl Sweeps {
    /// How many writes pass between sweeps of expired entries.
    const EVERY: u64 = 1024;

    /// Counts one write; whether it is time to sweep.
    fn wrote(&mut self) -> bool {
        self.writes += 1;
        self.writes.is_multiple_of(Self::EVERY)
    }
}

/// Records `key` as refused until `until`, never shortening a longer refusal.
fn refuse_until<K: std::hash::Hash + Eq>(refused: &mut HashMap<K, i64>, key: K, until: i64) {
    let entry = refused.entry(key).or_insert(until);
    *entry = (*entry).max(until);
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[derive(Default)]
struct Refresh {
    tokens: HashMap<TokenHash, RefreshRecord>,
    /// Revoked families, each with the time it may be forgotten.
    revoked_families: HashMap<Uuid, i64>,
    sweeps: Sweeps,
}

impl Refresh {
    fn wrote(&mut self, now: i64) {
        if self.sweeps.wrote() {
            self.tokens.retain(|_, r| r.expires_at > now);
            self.revoked_families.retain(|_, until| *until > now);
        }
    }

    fn family_revoked(&self, family: Uuid, now: i64) -> bool {
        self.revoked_families
            .get(&family)
            .is_some_and(|until| *until > now)
    }
}

/// Refresh tokens and revoked families under one lock, so a rotation is one step;
/// expired entries are swept every so many writes.
#[derive(Default)]
pub struct MemoryRefreshStore {
    inner: Mutex<Refresh>,
}

impl MemoryRefreshStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RefreshStore for MemoryRefreshStore {
    async fn put_refresh(&self, record: &RefreshRecord) -> Result<(), Error> {
        let mut refresh = lock(&self.inner);
        if refresh.tokens.contains_key(&record.hash) {
            return Err(Error::internal("refresh token hash collision"));
        }
        refresh.tokens.insert(record.hash.clone(), record.clone());
        refresh.wrote(now());
        Ok(())
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        Ok(lock(&self.inner).tokens.get(hash).cloned())
    }

    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation, Error> {
        let mut refresh = lock(&self.inner);
        let old = refresh.tokens.get(presented);
        let family_revoked = old.is_some_and(|o| refresh.family_revoked(o.family, now));
        match rotation_step(old, family_revoked, next, next_expires_at, now) {
            RotationStep::Refuse => Ok(Rotation::Refused),
            RotationStep::RevokeFamily { family, until } => {
                refuse_until(&mut refresh.revoked_families, family, until);
                refresh.wrote(now);
                Ok(Rotation::Reused { family })
            }
            RotationStep::Rotate(successor) => {
                if refresh.tokens.contains_key(next) {
                    return Err(Error::internal("refresh token hash collision"));
                }
                if let Some(old) = refresh.tokens.get_mut(presented) {
                    old.used = true;
                }
                refresh.tokens.insert(next.clone(), successor.clone());
                refresh.wrote(now);
                Ok(Rotation::Rotated(successor))
            }
        }
    }

    async fn revoke_family(&self, family: Uuid, until: i64) -> Result<(), Error> {
        let mut refresh = lock(&self.inner);
        refuse_until(&mut refresh.revoked_families, family, until);
        refresh.wrote(now());
        Ok(())
    }
}

#[derive(Default)]
struct Revocations {
    /// Revoked access-token ids, each with the time it may be forgotten.
    jtis: HashMap<String, i64>,
    sweeps: Sweeps,
}

/// Revoked access tokens; expired entries are swept every so many writes.
#[derive(Default)]
pub struct MemoryRevocationStore {
    inner: Mutex<Revocations>,
}

impl MemoryRevocationStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RevocationStore for MemoryRevocationStore {
    async fn revoke_access(&self, jti: &str, until: i64) -> Result<(), Error> {
        let mut revocations = lock(&self.inner);
        refuse_until(&mut revocations.jtis, jti.to_owned(), until);
        if revocations.sweeps.wrote() {
            let now = now();
            revocations.jtis.retain(|_, until| *until > now);
        }
        Ok(())
    }

    async fn is_access_revoked(&self, jti: &str, now: i64) -> Result<bool, Error> {
        Ok(lock(&self.inner)
            .jtis
            .get(jti)
            .is_some_and(|until| *until > now))
    }
}

#[derive(Default)]
struct Counters {
    attempts: HashMap<AttemptKey, Attempts>,
    sweeps: Sweeps,
}

/// Login-attempt counters under one lock, so a count is one step; closed windows are
/// swept every so many writes.
#[derive(Default)]
pub struct MemoryLoginAttemptStore {
    inner: Mutex<Counters>,
}

impl MemoryLoginAttemptStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl LoginAttemptStore for MemoryLoginAttemptStore {
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error> {
        let mut counters = lock(&self.inner);
        let window_ends_at =
            now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        let attempts = counters
            .attempts
            .entry(key.clone())
            .and_modify(|a| {
                if a.window_ends_at > now {
                    a.count += 1;
                } else {
                    *a = Attempts {
                        count: 1,
                        window_ends_at,
                    };
                }
            })
            .or_insert(Attempts {
                count: 1,
                window_ends_at,
            });
        let attempts = *attempts;
        if counters.sweeps.wrote() {
            counters.attempts.retain(|_, a| a.window_ends_at > now);
        }
        Ok(attempts)
    }

    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error> {
        let mut counters = lock(&self.inner);
        if let Some(a) = counters.attempts.get_mut(key) {
            if a.window_ends_at > now && a.count > 0 {
                a.count -= 1;
            }
        }
        Ok(())
    }

    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error> {
        lock(&self.inner).attempts.remove(key);
        Ok(())
    }
}
