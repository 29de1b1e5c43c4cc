//! Accounts by username, with the email claims, under one lock so that claiming a
//! username and an email is one step.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use crate::{Account, AccountStore};
use domain::Username;
use errors::Error;

/// The accounts table.
#[derive(Default)]
pub(super) struct Accounts {
    by_username: HashMap<String, Account>,
    email_owners: HashMap<String, Uuid>,
}

impl Accounts {
    /// The stored account `account` speaks for, if it still has the hash the caller
    /// read (the condition every write on an account's credentials carries).
    pub(super) fn still_current(&mut self, account: &Account) -> Option<&mut Account> {
        self.by_username
            .get_mut(&account.username.key())
            .filter(|a| a.user_id == account.user_id && a.password_hash == account.password_hash)
    }

    /// Removes `account` and its email claim (if still the account's).
    pub(super) fn remove(&mut self, account: &Account) {
        self.by_username.remove(&account.username.key());
        let email = account.email.key();
        if self.email_owners.get(&email) == Some(&account.user_id) {
            self.email_owners.remove(&email);
        }
    }
}

/// The account store over [`MemoryTables`].
pub struct MemoryAccountStore {
    tables: Arc<MemoryTables>,
}

impl MemoryAccountStore {
    /// An account store over tables of its own.
    pub fn new() -> Self {
        Self::over(MemoryTables::new())
    }

    /// The account store over `tables`.
    pub fn over(tables: Arc<MemoryTables>) -> Self {
        Self { tables }
    }
}

impl Default for MemoryAccountStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl AccountStore for MemoryAccountStore {
    async fn create(&self, account: &Account) -> Result<(), Error> {
        let mut accounts = self.tables.accounts();
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
        let accounts = self.tables.accounts();
        Ok(accounts.by_username.get(&username.key()).cloned())
    }

    async fn rehash(&self, account: &Account, new_hash: &str) -> Result<bool, Error> {
        let mut accounts = self.tables.accounts();
        let Some(stored) = accounts.still_current(account) else {
            return Ok(false);
        };
        stored.password_hash = new_hash.to_owned();
        Ok(true)
    }
}
