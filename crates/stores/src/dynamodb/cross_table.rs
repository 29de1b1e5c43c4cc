//! The account changes that span the three tables, each one `TransactWriteItems`: a
//! password change (accounts and security) and an account deletion (all three).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use uuid::Uuid;

use super::accounts::DynamoAccountStore;
use super::conditions::{
    self, CLAIMED_BY, LATEST_TOKEN, NOT_DELETED, PROFILE_EXISTS, TOKEN_LIVE, VERIFIED, VERIFIED_AT,
};
use super::error::get_consistent;
use super::item::{number_attr, string_attr};
use super::mail_tokens;
use super::pk;
use super::retry::{Retry, transact_with_retry};
use super::transact::{self, put_new};
use crate::config::Tables;
use crate::{Account, AccountStore, CrossTableWrites, MailPurpose, MailToken, TokenRefusal, Used};
use domain::refresh::TokenHash;
use errors::Error;

/// What using up a mailed token of `purpose` involves besides the token: whether it is
/// stale once the account's address has changed (`bound`), which of the changes is a claim
/// on a new address (`taken`, its index among them), and whether the changes need to know
/// if there is a profile (`reads_profile`: one more consistent read, redone on a retry).
struct TokenUse {
    purpose: MailPurpose,
    bound: bool,
    taken: Option<usize>,
    reads_profile: bool,
}

impl TokenUse {
    /// A token that proves the account's current address and changes nothing else's.
    fn bound_to_address(purpose: MailPurpose) -> Self {
        Self {
            purpose,
            bound: true,
            taken: None,
            reads_profile: false,
        }
    }
}

/// [`CrossTableWrites`] on the accounts, profiles and security tables.
#[derive(Clone)]
pub struct DynamoCrossTableWrites {
    client: Client,
    accounts: String,
    profiles: String,
    security: String,
}

impl DynamoCrossTableWrites {
    pub fn new(client: Client, tables: &Tables) -> Self {
        Self {
            client,
            accounts: tables.accounts.clone(),
            profiles: tables.profiles.clone(),
            security: tables.security.clone(),
        }
    }

    /// The user's state set to `generation` (if the user is not deleted), keeping the
    /// session `kept` live if there is one: every other session ends.
    fn new_generation(
        &self,
        user_id: Uuid,
        generation: AttributeValue,
        kept: Option<Uuid>,
    ) -> Result<TransactWriteItem, Error> {
        let mut state = Put::builder()
            .table_name(&self.security)
            .item("pk", string_attr(pk::user(user_id)))
            .item("gen", generation);
        if let Some(kept) = kept {
            state = state.item("kept", string_attr(kept.to_string()));
        }
        state
            .condition_expression(NOT_DELETED)
            .build()
            .map(transact::put)
            .map_err(Error::internal)
    }

    fn accounts(&self) -> DynamoAccountStore {
        DynamoAccountStore::new(self.client.clone(), &self.accounts)
    }

    /// The first two items of every transaction that uses up `token`: its deletion (if
    /// still live at `now`) and the check that it is still its user's latest.
    fn token_items(&self, token: &MailToken, now: i64) -> Result<Vec<TransactWriteItem>, Error> {
        let used = Delete::builder()
            .table_name(&self.security)
            .key("pk", string_attr(pk::mail_token(&token.hash)))
            .condition_expression(TOKEN_LIVE)
            .expression_attribute_values(":purpose", string_attr(token.purpose.as_str()))
            .expression_attribute_values(":now", number_attr(now))
            .build()
            .map_err(Error::internal)?;
        let latest = ConditionCheck::builder()
            .table_name(&self.security)
            .key(
                "pk",
                string_attr(pk::latest_mail_token(token.user_id, token.purpose)),
            )
            .condition_expression(LATEST_TOKEN)
            .expression_attribute_values(":hash", string_attr(token.hash.as_str()))
            .build()
            .map_err(Error::internal)?;
        Ok(vec![transact::delete(used), transact::check(latest)])
    }

    /// Uses up the token `hash` of `purpose` at `now` with the account changes `changes`
    /// makes of it and the account as read, in one transaction: read again after the
    /// account changed in between (its conditions failed), as [`Retry`] allows. A token
    /// `bound` to the account's address is stale once the address has changed;
    /// `taken` is the index among `changes`'s items of a claim on a new address.
    async fn use_token<F>(
        &self,
        hash: &TokenHash,
        how: TokenUse,
        now: i64,
        changes: F,
    ) -> Result<Used, Error>
    where
        F: Fn(&MailToken, &Account, bool) -> Result<Vec<TransactWriteItem>, Error> + Send + Sync,
    {
        let TokenUse {
            purpose,
            bound,
            taken,
            reads_profile,
        } = how;
        let mut retry = Retry::new();
        loop {
            let token = mail_tokens::find(&self.client, &self.security, hash).await?;
            let Some(token) = token.filter(|t| t.purpose == purpose && t.expires_at > now) else {
                return Ok(Err(TokenRefusal::Invalid));
            };
            let account = self.accounts().find_by_id(token.user_id).await?;
            let Some(account) = account.filter(|a| !bound || a.email.key() == token.email.key())
            else {
                return Ok(Err(TokenRefusal::Stale));
            };
            let has_profile = reads_profile && {
                let key = ("user_id", string_attr(account.user_id.to_string()));
                get_consistent(&self.client, &self.profiles, key)
                    .await?
                    .is_some()
            };
            let mut items = self.token_items(&token, now)?;
            items.extend(changes(&token, &account, has_profile)?);
            let Some(cancelled) =
                transact_with_retry(&self.client, purpose.as_str(), items).await?
            else {
                return Ok(Ok(account));
            };
            if cancelled.failed(0) || cancelled.failed(1) {
                return Ok(Err(TokenRefusal::Invalid));
            }
            if taken.is_some_and(|i| cancelled.failed(i + 2)) {
                return Err(Error::EmailTaken);
            }
            retry.again_at_once(format!(
                "the account changed while a {} token was used",
                purpose.as_str()
            ))?;
        }
    }

    /// Updates of both copies of `account` by `expression` with `values`, if they still
    /// have the verified hash and the address read.
    fn set_at_address(
        &self,
        account: &Account,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let mut values = values.to_vec();
        values.push((":email", string_attr(account.email.as_str())));
        values.push((":true", AttributeValue::Bool(true)));
        DynamoAccountStore::set_if(&self.accounts, account, VERIFIED_AT, expression, &values)
    }

    /// A `Delete` of `account`'s item at `pk` in the accounts table, on `condition`
    /// ([`VERIFIED`] or [`CLAIMED_BY`]).
    fn delete_copy(
        &self,
        key: String,
        account: &Account,
        condition: &'static str,
    ) -> Result<Delete, Error> {
        let [verified, uid] = conditions::verified_values(account);
        let mut delete = Delete::builder()
            .table_name(&self.accounts)
            .key("pk", string_attr(key))
            .condition_expression(condition)
            .expression_attribute_values(uid.0, uid.1);
        if condition == VERIFIED {
            delete = delete.expression_attribute_values(verified.0, verified.1);
        }
        delete.build().map_err(Error::internal)
    }
}

#[async_trait]
impl CrossTableWrites for DynamoCrossTableWrites {
    /// One `TransactWriteItems`: both copies of the account get the new hash and the
    /// next generation if they still have the verified hash
    /// ([`DynamoAccountStore::set_verified`]), and the user's state records that
    /// generation and the kept session.
    async fn change_password(
        &self,
        account: &Account,
        new_hash: &str,
        keep: Uuid,
    ) -> Result<bool, Error> {
        let generation = number_attr(account.generation as i64 + 1);
        let mut items = DynamoAccountStore::set_verified(
            &self.accounts,
            account,
            "SET password_hash = :new, gen = :gen",
            &[
                (":new", string_attr(new_hash)),
                (":gen", generation.clone()),
            ],
        )?;
        items.push(self.new_generation(account.user_id, generation, Some(keep))?);
        let refused = transact_with_retry(&self.client, "password", items).await?;
        Ok(refused.is_none())
    }

    /// One `TransactWriteItems` across the three tables: the account and its username
    /// claim (if they still have the verified hash), the email claim (if still the
    /// user's), the profile, and the user's deletion marker.
    async fn delete_account(&self, account: &Account, until: i64, now: i64) -> Result<bool, Error> {
        let profile = Delete::builder()
            .table_name(&self.profiles)
            .key("user_id", string_attr(account.user_id.to_string()))
            .build()
            .map_err(Error::internal)?;
        let marker = Put::builder()
            .table_name(&self.security)
            .item("pk", string_attr(pk::user(account.user_id)))
            .item("gen", number_attr(account.generation as i64))
            .item("deleted_at", number_attr(now))
            .item("expires_at", number_attr(until))
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            transact::delete(self.delete_copy(pk::user(account.user_id), account, VERIFIED)?),
            transact::delete(self.delete_copy(
                pk::username(&account.username),
                account,
                VERIFIED,
            )?),
            transact::delete(self.delete_copy(pk::email(&account.email), account, CLAIMED_BY)?),
            transact::delete(profile),
            transact::put(marker),
        ];
        let refused = transact_with_retry(&self.client, "delete account", items).await?;
        Ok(refused.is_none())
    }

    /// One consistent `GetItem` of the token and one of the account, then one
    /// `TransactWriteItems`: the token used up (if live and its user's latest), and
    /// both copies of the account marked verified (if still at the address the mail
    /// went to).
    async fn verify_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error> {
        let how = TokenUse::bound_to_address(MailPurpose::VerifyEmail);
        self.use_token(hash, how, now, |_, account, _| {
            self.set_at_address(account, "SET email_verified = :true", &[])
        })
        .await
    }

    /// As [`verify_email`](Self::verify_email), setting the new hash and the next
    /// generation as well, and the user's state to that generation with no session
    /// kept (every session ends).
    async fn reset_password(
        &self,
        hash: &TokenHash,
        new_hash: &str,
        now: i64,
    ) -> Result<Used, Error> {
        let how = TokenUse::bound_to_address(MailPurpose::ResetPassword);
        self.use_token(hash, how, now, |_, account, _| {
            let generation = number_attr(account.generation as i64 + 1);
            let mut items = self.set_at_address(
                account,
                "SET password_hash = :new, gen = :gen, email_verified = :true",
                &[
                    (":new", string_attr(new_hash)),
                    (":gen", generation.clone()),
                ],
            )?;
            items.push(self.new_generation(account.user_id, generation, None)?);
            Ok(items)
        })
        .await
    }

    /// Three consistent `GetItem`s (token, account, profile), then one
    /// `TransactWriteItems`: the token used up, both copies of the account moved to
    /// the new address (verified), the old address's claim deleted (if the user's),
    /// the new one's put (if free: else 409), and the profile's copy of the address
    /// updated (if there is a profile). A profile created between the read and the
    /// transaction keeps the address its creator's token carried.
    async fn change_email(&self, hash: &TokenHash, now: i64) -> Result<Used, Error> {
        let how = TokenUse {
            purpose: MailPurpose::ChangeEmail,
            bound: false,
            // The new address's claim: the 4th change, after both copies and the old claim.
            taken: Some(3),
            reads_profile: true,
        };
        self.use_token(hash, how, now, |token, account, has_profile| {
            let new_email = string_attr(token.email.as_str());
            let mut items = self.set_at_address(
                account,
                "SET email = :new_email, email_verified = :true",
                &[(":new_email", new_email.clone())],
            )?;
            let old = self.delete_copy(pk::email(&account.email), account, CLAIMED_BY)?;
            items.push(transact::delete(old));
            let claim = [
                ("pk".to_owned(), string_attr(pk::email(&token.email))),
                (
                    "user_id".to_owned(),
                    string_attr(account.user_id.to_string()),
                ),
            ];
            items.push(put_new(&self.accounts, claim.into_iter().collect())?);
            if has_profile {
                let update = Update::builder()
                    .table_name(&self.profiles)
                    .key("user_id", string_attr(account.user_id.to_string()))
                    .update_expression("SET email = :new_email")
                    .condition_expression(PROFILE_EXISTS)
                    .expression_attribute_values(":new_email", new_email)
                    .build()
                    .map_err(Error::internal)?;
                items.push(transact::update(update));
            }
            Ok(items)
        })
        .await
    }
}
