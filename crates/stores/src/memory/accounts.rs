//! Accounts by username, with the email claims, under one lock so that claiming a
//! username and an email is one step.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use crate::{Account, AccountStore};
use domain::{Email, Username};
use errors::Error;

/// The accounts table.
#[derive(Default)]
pub(super) struct Accounts {
    by_username: HashMap<String, Account>,
    email_owners: HashMap<String, Uuid>,
    /// The username key of each account, by id.
    usernames: HashMap<Uuid, String>,
}

impl Accounts {
    /// The stored account `account` speaks for, if it still has the hash the caller
    /// read (the condition every write on an account's credentials carries).
    pub(super) fn still_current(&mut self, account: &Account) -> Option<&mut Account> {
        self.by_username
            .get_mut(&account.username.key())
            .filter(|a| a.user_id == account.user_id && a.password_hash == account.password_hash)
    }

    /// The account with this id.
    pub(super) fn by_id(&mut self, user_id: Uuid) -> Option<&mut Account> {
        let username = self.usernames.get(&user_id)?;
        self.by_username.get_mut(username)
    }

    /// Removes `account` and its email claim (if still the account's).
    pub(super) fn remove(&mut self, account: &Account) {
        self.by_username.remove(&account.username.key());
        self.usernames.remove(&account.user_id);
        self.release_email(account.user_id, &account.email.key());
    }

    /// Frees the claim on the address `key` if `user_id` holds it.
    fn release_email(&mut self, user_id: Uuid, key: &str) {
        if self.email_owners.get(key) == Some(&user_id) {
            self.email_owners.remove(key);
        }
    }

    /// Moves the account `user_id` to the address `to`, verified, its claim with it:
    /// [`Error::EmailTaken`] (nothing changed) when another account holds `to`.
    pub(super) fn move_email(&mut self, user_id: Uuid, to: &Email) -> Result<(), Error> {
        let key = to.key();
        if self
            .email_owners
            .get(&key)
            .is_some_and(|owner| *owner != user_id)
        {
            return Err(Error::EmailTaken);
        }
        let Some(account) = self.by_id(user_id) else {
            return Err(Error::UserNotFound);
        };
        let old = account.email.key();
        account.email = to.clone();
        account.email_verified = true;
        self.release_email(user_id, &old);
        self.email_owners.insert(key, user_id);
        Ok(())
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
        accounts.usernames.insert(account.user_id, username.clone());
        accounts.by_username.insert(username, account.clone());
        Ok(())
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error> {
        let accounts = self.tables.accounts();
        Ok(accounts.by_username.get(&username.key()).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, Error> {
        let mut accounts = self.tables.accounts();
        let Some(owner) = accounts.email_owners.get(&email.key()).copied() else {
            return Ok(None);
        };
        Ok(accounts.by_id(owner).map(|a| a.clone()))
    }

    async fn find_by_id(&self, user_id: Uuid) -> Result<Option<Account>, Error> {
        Ok(self.tables.accounts().by_id(user_id).map(|a| a.clone()))
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
