//! Profiles ordered by `user_id`, which is also the listing order; a write checks its
//! [`WriteGuard`] against the security table and holds both locks until it is done
//! (profiles, then security, as an account deletion takes them).

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use crate::{Cursor, Page, Profile, ProfilePatch, ProfileStore, WriteGuard};
use errors::Error;

/// The profile store over [`MemoryTables`].
pub struct MemoryProfileStore {
    tables: Arc<MemoryTables>,
}

impl MemoryProfileStore {
    /// A profile store over tables of its own.
    pub fn new() -> Self {
        Self::over(MemoryTables::new())
    }

    /// The profile store over `tables`.
    pub fn over(tables: Arc<MemoryTables>) -> Self {
        Self { tables }
    }

    /// The tables this store is a view of, to make the other stores over.
    pub fn tables(&self) -> Arc<MemoryTables> {
        self.tables.clone()
    }
}

impl Default for MemoryProfileStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl ProfileStore for MemoryProfileStore {
    async fn create(&self, profile: &Profile, guard: &WriteGuard) -> Result<(), Error> {
        let mut profiles = self.tables.profiles_write();
        let security = self.tables.security();
        if !security.allows(guard) {
            return Err(Error::Unauthorized);
        }
        if profiles.contains_key(&profile.user_id) {
            return Err(Error::ProfileExists);
        }
        profiles.insert(profile.user_id, profile.clone());
        Ok(())
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        Ok(self.tables.profiles_read().get(&user_id).cloned())
    }

    async fn update(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        guard: &WriteGuard,
    ) -> Result<(), Error> {
        let mut profiles = self.tables.profiles_write();
        let security = self.tables.security();
        if !security.allows(guard) {
            return Err(Error::Unauthorized);
        }
        let profile = profiles.get_mut(&user_id).ok_or(Error::UserNotFound)?;
        if let Some(full_name) = &patch.full_name {
            profile.full_name.clone_from(full_name);
        }
        if let Some(bio) = &patch.bio {
            profile.bio.clone_from(bio);
        }
        Ok(())
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        let mut profiles = self.tables.profiles_write();
        profiles
            .remove(&user_id)
            .map(|_| ())
            .ok_or(Error::UserNotFound)
    }

    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        let profiles = self.tables.profiles_read();
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
