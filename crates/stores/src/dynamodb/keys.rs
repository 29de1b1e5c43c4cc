//! Token-signing public keys in the security table: the registry item `KEYS` (every
//! key still alive, the current one first, with a version for optimistic locking) that
//! auth reads and writes and verifiers read, and one item `KEY#<kid>` per key for
//! verifiers that look a key up by its id. No private key is ever stored.

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};

use super::conditions::{NEW_ITEM, REGISTRY_AT};
use super::error::{Cancelled, get_consistent};
use super::item::{Fields, Item, number_attr, string_attr};
use super::retry::Retry;
use super::transact;
use crate::{KeyStore, PublicKey, activated};
use errors::Error;

/// The partition key of the registry item.
pub const REGISTRY_KEY: &str = super::pk::REGISTRY;

#[derive(Clone)]
pub struct DynamoKeyStore {
    client: Client,
    table: String,
}

fn key_fields(key: &PublicKey) -> Item {
    let mut item = Item::from([
        ("kid".into(), string_attr(&key.kid)),
        ("x".into(), string_attr(&key.x)),
        ("alg".into(), string_attr("EdDSA")),
        ("created_at".into(), number_attr(key.created_at)),
    ]);
    if let Some(at) = key.expires_at {
        item.insert("expires_at".into(), number_attr(at));
    }
    item
}

fn key_from(item: &Item) -> Result<PublicKey, Error> {
    let f = Fields::of(item, "public key");
    Ok(PublicKey {
        kid: f.text("kid")?.to_owned(),
        x: f.text("x")?.to_owned(),
        created_at: f.number("created_at")?,
        expires_at: f.optional_number("expires_at")?,
    })
}

impl DynamoKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// [`pk::key`](super::pk::key).
    pub fn signing_key_pk(kid: &str) -> String {
        super::pk::key(kid)
    }

    /// The registry's keys and version (0 and none when there is no registry yet).
    async fn registry(&self) -> Result<(Vec<PublicKey>, i64), Error> {
        let item =
            get_consistent(&self.client, &self.table, ("pk", string_attr(REGISTRY_KEY))).await?;
        let Some(item) = item.as_ref() else {
            return Ok((Vec::new(), 0));
        };
        let f = Fields::of(item, "key registry");
        let version = f.number("version")?;
        let keys = match item.get("keys") {
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| match v {
                    AttributeValue::M(m) => key_from(m),
                    _ => Err(f.bad("keys", "holds something other than a map")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(f.bad("keys", "is not a list")),
        };
        Ok((keys, version))
    }

    fn write(&self, keys: &[PublicKey], version: i64) -> Result<Vec<TransactWriteItem>, Error> {
        let registry = Put::builder()
            .table_name(&self.table)
            .item("pk", string_attr(REGISTRY_KEY))
            .item(
                "keys",
                AttributeValue::L(
                    keys.iter()
                        .map(|k| AttributeValue::M(key_fields(k)))
                        .collect(),
                ),
            )
            .item("version", number_attr(version + 1));
        let registry = if version == 0 {
            registry.condition_expression(NEW_ITEM)
        } else {
            registry
                .condition_expression(REGISTRY_AT)
                .expression_attribute_values(":v", number_attr(version))
        }
        .build()
        .map_err(Error::internal)?;
        let mut items = vec![transact::put(registry)];
        for key in keys {
            let mut item = key_fields(key);
            item.insert("pk".into(), string_attr(Self::signing_key_pk(&key.kid)));
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map_err(Error::internal)?;
            items.push(transact::put(put));
        }
        Ok(items)
    }
}

#[async_trait]
impl KeyStore for DynamoKeyStore {
    /// A consistent `GetItem` of the registry; when the key is not current yet, one
    /// `TransactWriteItems` that writes the registry (if its version has not moved) and
    /// each live key's item (their TTL is their expiry). Lost races start again.
    async fn activate_key(
        &self,
        key: &PublicKey,
        retire_after: std::time::Duration,
        now: i64,
    ) -> Result<(), Error> {
        let mut retry = Retry::new();
        loop {
            let (registry, version) = self.registry().await?;
            let Some(next) = activated(&registry, key, retire_after, now) else {
                return Ok(());
            };
            let call = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.write(&next, version)?))
                .send();
            let what = "TransactWriteItems (key registry)";
            let Err(err) = retry.bounded(what, call).await? else {
                return Ok(());
            };
            let cancelled = Cancelled::of(err)?;
            let cause = if cancelled.failed(0) {
                format!("DynamoDB {what}: the registry kept changing")
            } else {
                cancelled.otherwise("key registry")?
            };
            retry.again(cause).await?;
        }
    }

    /// One consistent `GetItem` of `KEY#<kid>`.
    async fn public_key(&self, kid: &str, now: i64) -> Result<Option<PublicKey>, Error> {
        let item = get_consistent(
            &self.client,
            &self.table,
            ("pk", string_attr(Self::signing_key_pk(kid))),
        )
        .await?;
        Ok(item
            .as_ref()
            .map(key_from)
            .transpose()?
            .filter(|k| k.alive(now)))
    }

    /// One consistent `GetItem` of the registry.
    async fn published_keys(&self, now: i64) -> Result<Vec<PublicKey>, Error> {
        let (keys, _) = self.registry().await?;
        Ok(keys.into_iter().filter(|k| k.alive(now)).collect())
    }
}
