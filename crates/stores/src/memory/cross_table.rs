//! The steps that span the accounts, profiles and security tables, each one atomic
//! step under their locks, taken in the tables' order.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use crate::{Account, CrossTableWrites, UserState};
use errors::Error;

/// [`CrossTableWrites`] over [`MemoryTables`].
pub struct MemoryCrossTableWrites {
    tables: Arc<MemoryTables>,
}

impl MemoryCrossTableWrites {
    /// The cross-table steps over `tables`.
    pub fn over(tables: Arc<MemoryTables>) -> Self {
        Self { tables }
    }
}

#[async_trait]
impl CrossTableWrites for MemoryCrossTableWrites {
    async fn change_password(
        &self,
        account: &Account,
        new_hash: &str,
        keep: Uuid,
    ) -> Result<bool, Error> {
        let mut accounts = self.tables.accounts();
        let Some(stored) = accounts.still_current(account) else {
            return Ok(false);
        };
        let generation = account.generation + 1;
        stored.password_hash = new_hash.to_owned();
        stored.generation = generation;
        let state = UserState {
            generation,
            kept: Some(keep),
            deleted_at: None,
        };
        self.tables
            .security()
            .set_user(account.user_id, state, None);
        Ok(true)
    }

    async fn delete_account(&self, account: &Account, until: i64, now: i64) -> Result<bool, Error> {
        let mut accounts = self.tables.accounts();
        if accounts.still_current(account).is_none() {
            return Ok(false);
        }
        let mut profiles = self.tables.profiles_write();
        let mut security = self.tables.security();
        accounts.remove(account);
        profiles.remove(&account.user_id);
        let state = UserState {
            generation: account.generation,
            kept: None,
            deleted_at: Some(now),
        };
        security.set_user(account.user_id, state, Some(until));
        security.wrote(now);
        Ok(true)
    }
}
