//! Accounts in one table keyed by `pk`, guarded by claim items written in one
//! transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use uuid::Uuid;

use super::conditions::{self, VERIFIED};
use super::error::get_consistent;
use super::item::{Fields, Item, string_attr, timestamp};
use super::retry::transact_with_retry;
use super::transact::{self, put_new};
use crate::{Account, AccountStore};
use domain::{Email, Username};
use errors::Error;

/// Accounts in one table keyed by `pk`: the account, its username claim (a full copy,
/// so login is one read) and its email claim.
#[derive(Clone)]
pub struct DynamoAccountStore {
    client: Client,
    table: String,
}

impl DynamoAccountStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// [`pk::user`](super::pk::user).
    pub fn user_key(user_id: Uuid) -> String {
        super::pk::user(user_id)
    }

    /// [`pk::username`](super::pk::username).
    pub fn username_key(username: &Username) -> String {
        super::pk::username(username)
    }

    /// [`pk::email`](super::pk::email).
    pub fn email_key(email: &Email) -> String {
        super::pk::email(email)
    }

    fn put(&self, pk: String, mut item: Item) -> Result<TransactWriteItem, Error> {
        item.insert("pk".into(), string_attr(pk));
        put_new(&self.table, item)
    }

    /// Updates of both copies of `account` in `table` (`USER#` and `USERNAME#`) by
    /// `expression` with `values`, each on the condition that it still has the hash the
    /// caller verified ([`VERIFIED`]).
    pub(super) fn set_verified(
        table: &str,
        account: &Account,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        Self::set_if(table, account, VERIFIED, expression, values)
    }

    /// [`set_verified`](Self::set_verified) on `condition` ([`VERIFIED`] or one that
    /// adds to it, e.g. `VERIFIED_AT`, whose values are among `values`).
    pub(super) fn set_if(
        table: &str,
        account: &Account,
        condition: &'static str,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let update = |pk: String| {
            let mut update = Update::builder()
                .table_name(table)
                .key("pk", string_attr(pk))
                .update_expression(expression)
                .condition_expression(condition);
            for (name, value) in conditions::verified_values(account)
                .into_iter()
                .chain(values.iter().cloned())
            {
                update = update.expression_attribute_values(name, value);
            }
            update
                .build()
                .map(transact::update)
                .map_err(Error::internal)
        };
        Ok(vec![
            update(Self::user_key(account.user_id))?,
            update(Self::username_key(&account.username))?,
        ])
    }

    fn registration(&self, account: &Account) -> Result<Vec<TransactWriteItem>, Error> {
        let record = Item::from([
            ("user_id".into(), string_attr(account.user_id.to_string())),
            ("username".into(), string_attr(account.username.as_str())),
            ("email".into(), string_attr(account.email.as_str())),
            ("password_hash".into(), string_attr(&account.password_hash)),
            ("created_at".into(), timestamp(&account.created_at)),
        ]);
        let claim = Item::from([("user_id".into(), string_attr(account.user_id.to_string()))]);
        Ok(vec![
            self.put(Self::user_key(account.user_id), record.clone())?,
            self.put(Self::username_key(&account.username), record)?,
            self.put(Self::email_key(&account.email), claim)?,
        ])
    }
}

fn account_from(item: &Item) -> Result<Account, Error> {
    let f = Fields::of(item, "account");
    let invalid = |name: &str| f.bad(name, "fails validation");
    Ok(Account {
        user_id: f.uuid("user_id")?,
        username: Username::parse(f.text("username")?).map_err(|_| invalid("username"))?,
        email: Email::parse(f.text("email")?).map_err(|_| invalid("email"))?,
        password_hash: f.text("password_hash")?.to_owned(),
        created_at: f.time("created_at")?,
        generation: f.generation("gen")?,
        email_verified: f.optional_flag("email_verified")?,
    })
}

#[async_trait]
impl AccountStore for DynamoAccountStore {
    async fn create(&self, account: &Account) -> Result<(), Error> {
        let items = self.registration(account)?;
        match transact_with_retry(&self.client, "register", items).await? {
            None => Ok(()),
            Some(refused) if refused.failed(1) => Err(Error::UsernameTaken),
            Some(refused) if refused.failed(2) => Err(Error::EmailTaken),
            Some(refused) => Err(refused.unexpected("register")),
        }
    }

    async fn find_by_username(&self, username: &Username) -> Result<Option<Account>, Error> {
        let item = get_consistent(
            &self.client,
            &self.table,
            ("pk", string_attr(Self::username_key(username))),
        )
        .await?;
        item.as_ref().map(account_from).transpose()
    }

    /// A consistent `GetItem` of the `EMAIL#` claim, then of the account it names.
    async fn find_by_email(&self, email: &Email) -> Result<Option<Account>, Error> {
        let key = ("pk", string_attr(Self::email_key(email)));
        let Some(claim) = get_consistent(&self.client, &self.table, key).await? else {
            return Ok(None);
        };
        let user_id = Fields::of(&claim, "email claim").uuid("user_id")?;
        self.find_by_id(user_id).await
    }

    async fn find_by_id(&self, user_id: Uuid) -> Result<Option<Account>, Error> {
        let key = ("pk", string_attr(Self::user_key(user_id)));
        let item = get_consistent(&self.client, &self.table, key).await?;
        item.as_ref().map(account_from).transpose()
    }

    /// One `TransactWriteItems`: an `UpdateItem` of each copy of the account (`USER#`
    /// and `USERNAME#`) that sets `password_hash` if it is still the verified one;
    /// `gen` is left as it is. Retried while it loses races to other transactions.
    async fn rehash(&self, account: &Account, new_hash: &str) -> Result<bool, Error> {
        let items = Self::set_verified(
            &self.table,
            account,
            "SET password_hash = :new",
            &[(":new", string_attr(new_hash))],
        )?;
        let refused = transact_with_retry(&self.client, "rehash", items).await?;
        Ok(refused.is_none())
    }
}
