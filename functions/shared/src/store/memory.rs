//! In-memory stores: the embedded default for `local` and tests.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, RwLock};

use async_trait::async_trait;
use uuid::Uuid;

use super::{Account, AccountStore, Cursor, Page, Profile, ProfilePatch, ProfileStore};
use crate::domain::Username;
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
