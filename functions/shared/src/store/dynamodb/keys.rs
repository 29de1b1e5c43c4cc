//! Token-signing public keys in the security table (`KEY#<kid>`): written by auth,
//! read by verifiers. No private key is ever stored.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;

use super::error::{conditional, sdk_error};
use super::item::{n, s, Fields};
use crate::store::{KeyStore, PublicKey};
use crate::Error;

#[derive(Clone)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn key_key(kid: &str) -> String {
        format!("KEY#{kid}")
    }
}

#[async_trait]
impl KeyStore for DynamoKeyStore {
    /// One conditional `PutItem`; a key already published stays as it is.
    async fn publish_key(&self, key: &PublicKey) -> Result<(), Error> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(Self::key_key(&key.kid)))
            .item("x", s(&key.x))
            .item("alg", s("EdDSA"))
            .item("created_at", n(key.created_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", sent)?;
        Ok(())
    }

    /// One consistent `GetItem`.
    async fn public_key(&self, kid: &str) -> Result<Option<PublicKey>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::key_key(kid)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let f = Fields {
            item,
            what: "public key",
        };
        Ok(Some(PublicKey {
            kid: kid.to_owned(),
            x: f.text("x")?.to_owned(),
            created_at: f.number("created_at")?,
        }))
    }
}
