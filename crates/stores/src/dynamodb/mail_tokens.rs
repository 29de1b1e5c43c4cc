//! Mailed tokens in the security table: `MAIL#<SHA-256>` per token, and per user and
//! purpose `MAILS#<user_id>#<purpose>` naming the live one (so issuing a token retires
//! the earlier ones without finding them); both expire by TTL with the token.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put};

use super::error::get_consistent;
use super::item::{Fields, Item, number_attr, string_attr};
use super::pk;
use super::retry::transact_with_retry;
use super::transact::{self, put_new};
use crate::{MailPurpose, MailToken, MailTokenStore};
use domain::Email;
use domain::refresh::TokenHash;
use errors::Error;

/// Mailed tokens in the security table.
#[derive(Clone)]
pub struct DynamoMailTokenStore {
    client: Client,
    table: String,
}

impl DynamoMailTokenStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn token_item(token: &MailToken) -> Item {
    Item::from([
        ("pk".into(), string_attr(pk::mail_token(&token.hash))),
        ("purpose".into(), string_attr(token.purpose.as_str())),
        ("user_id".into(), string_attr(token.user_id.to_string())),
        ("email".into(), string_attr(token.email.as_str())),
        ("expires_at".into(), number_attr(token.expires_at)),
    ])
}

/// The token stored as `item` under `hash`.
pub(super) fn token_from(hash: &TokenHash, item: &Item) -> Result<MailToken, Error> {
    let f = Fields::of(item, "mailed token");
    let purpose = f.text("purpose")?;
    Ok(MailToken {
        hash: hash.clone(),
        purpose: MailPurpose::parse(purpose).ok_or_else(|| f.bad("purpose", "is unknown"))?,
        user_id: f.uuid("user_id")?,
        email: Email::parse(f.text("email")?).map_err(|_| f.bad("email", "fails validation"))?,
        expires_at: f.number("expires_at")?,
    })
}

/// The stored token with this hash in `table`.
pub(super) async fn find(
    client: &Client,
    table: &str,
    hash: &TokenHash,
) -> Result<Option<MailToken>, Error> {
    let key = ("pk", string_attr(pk::mail_token(hash)));
    let item = get_consistent(client, table, key).await?;
    item.as_ref().map(|item| token_from(hash, item)).transpose()
}

#[async_trait]
impl MailTokenStore for DynamoMailTokenStore {
    /// One `TransactWriteItems`: the token (new) and its user's pointer to it for its
    /// purpose (overwritten: the earlier tokens are retired).
    async fn issue(&self, token: &MailToken) -> Result<(), Error> {
        let latest = Put::builder()
            .table_name(&self.table)
            .item(
                "pk",
                string_attr(pk::latest_mail_token(token.user_id, token.purpose)),
            )
            .item("latest", AttributeValue::S(token.hash.as_str().to_owned()))
            .item("expires_at", number_attr(token.expires_at))
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            put_new(&self.table, token_item(token))?,
            transact::put(latest),
        ];
        match transact_with_retry(&self.client, "mailed token", items).await? {
            None => Ok(()),
            Some(cancelled) => Err(cancelled.unexpected("mailed token (hash collision)")),
        }
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<MailToken>, Error> {
        find(&self.client, &self.table, hash).await
    }
}
