//! Revoked access tokens in the security table, and the revocation write that families
//! share.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::Utc;

use super::error::{conditional, sdk_error};
use super::item::{n, s, Fields};
use crate::store::RevocationStore;
use crate::Error;

/// Revoked access tokens (by `jti`) in the security table keyed by `pk`, each item
/// expiring by TTL on `expires_at`.
#[derive(Clone)]
pub struct DynamoRevocationStore {
    client: Client,
    table: String,
}

impl DynamoRevocationStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn revoked_key(jti: &str) -> String {
        format!("REVOKED#{jti}")
    }
}

/// Writes a record under `pk` that refuses something until `until`, never shortening
/// one that already refuses it for longer.
pub(super) async fn put_revocation(
    client: &Client,
    table: &str,
    pk: String,
    until: i64,
) -> Result<(), Error> {
    let sent = client
        .put_item()
        .table_name(table)
        .item("pk", s(pk))
        .item("expires_at", n(until))
        .item("revoked_at", n(Utc::now().timestamp()))
        .condition_expression("attribute_not_exists(pk) OR expires_at < :until")
        .expression_attribute_values(":until", n(until))
        .send()
        .await;
    conditional("PutItem", sent)?;
    Ok(())
}

#[async_trait]
impl RevocationStore for DynamoRevocationStore {
    async fn revoke_access(&self, jti: &str, until: i64) -> Result<(), Error> {
        put_revocation(&self.client, &self.table, Self::revoked_key(jti), until).await
    }

    async fn is_access_revoked(&self, jti: &str, now: i64) -> Result<bool, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::revoked_key(jti)))
            .projection_expression("expires_at")
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        match out.item() {
            None => Ok(false),
            Some(item) => Ok(Fields {
                item,
                what: "revocation",
            }
            .number("expires_at")?
                > now),
        }
    }
}
