//! The account changes that span the three tables, each one `TransactWriteItems`: a
//! password change (accounts and security) and an account deletion (all three).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Delete, Put};
use uuid::Uuid;

use super::accounts::DynamoAccountStore;
use super::conditions::{self, CLAIMED_BY, NOT_DELETED, VERIFIED};
use super::item::{number_attr, string_attr};
use super::pk;
use super::retry::transact_with_retry;
use super::transact;
use crate::config::Tables;
use crate::{Account, CrossTableWrites};
use errors::Error;

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
        let state = Put::builder()
            .table_name(&self.security)
            .item("pk", string_attr(pk::user(account.user_id)))
            .item("gen", generation)
            .item("kept", string_attr(keep.to_string()))
            .condition_expression(NOT_DELETED)
            .build()
            .map_err(Error::internal)?;
        items.push(transact::put(state));
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
}
