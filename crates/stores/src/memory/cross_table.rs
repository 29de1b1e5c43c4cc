//! The steps that span the accounts, profiles and security tables, each one atomic
//! step under their locks, taken in the tables' order.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use super::MemoryTables;
use super::accounts::Accounts;
use super::security::Security;
use crate::{Account, CrossTableWrites, MailPurpose, TokenRefusal, Used, UserState};
use domain::refresh::TokenHash;
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

/// The account a live token `hash` of `purpose` speaks for, if it still has the
/// address the mail went to: else why not.
fn token_account<'a>(
    accounts: &'a mut Accounts,
    security: &Security,
    hash: &TokenHash,
    purpose: MailPurpose,
    now: i64,
) -> Result<&'a mut Account, TokenRefusal> {
    let token = security
        .live_mail_token(hash, purpose, now)
        .ok_or(TokenRefusal::Invalid)?;
    accounts
        .by_id(token.user_id)
        .filter(|a| a.email.key() == token.email.key())
        .ok_or(TokenRefusal::Stale)
}

impl MemoryCrossTableWrites {
    /// Uses up the token `hash` of `purpose` at `now`, with `change` made to its
    /// account (and the security table), under the locks of both: the account as it
    /// was, or why nothing happened.
    fn use_token(
        &self,
        hash: &TokenHash,
        purpose: MailPurpose,
        now: i64,
        change: impl FnOnce(&mut Account, &mut Security),
    ) -> Used {
        let mut accounts = self.tables.accounts();
        let mut security = self.tables.security();
        let account = token_account(&mut accounts, &security, hash, purpose, now)?;
        let before = account.clone();
        change(account, &mut security);
        security.use_mail_token(hash, now);
        Ok(before)
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

    async fn verify_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error> {
        Ok(
            self.use_token(hash, MailPurpose::VerifyEmail, now, |account, _| {
                account.email_verified = true;
            }),
        )
    }

    async fn reset_password(
        &self,
        hash: &TokenHash,
        new_hash: &str,
        now: i64,
    ) -> Result<Used, Error> {
        Ok(self.use_token(
            hash,
            MailPurpose::ResetPassword,
            now,
            |account, security| {
                account.password_hash = new_hash.to_owned();
                account.generation += 1;
                account.email_verified = true;
                let state = UserState {
                    generation: account.generation,
                    kept: None,
                    deleted_at: None,
                };
                security.set_user(account.user_id, state, None);
            },
        ))
    }

    async fn change_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error> {
        let mut accounts = self.tables.accounts();
        let mut profiles = self.tables.profiles_write();
        let mut security = self.tables.security();
        let Some(token) = security.live_mail_token(hash, MailPurpose::ChangeEmail, now) else {
            return Ok(Err(TokenRefusal::Invalid));
        };
        let Some(before) = accounts.by_id(token.user_id).map(|a| a.clone()) else {
            return Ok(Err(TokenRefusal::Stale));
        };
        accounts.move_email(token.user_id, &token.email)?;
        if let Some(profile) = profiles.get_mut(&token.user_id) {
            profile.email = token.email.as_str().to_owned();
        }
        security.use_mail_token(hash, now);
        Ok(Ok(before))
    }
}
