//! Refresh tokens (by hash) and revoked families in the security table, a rotation
//! being one transaction.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use uuid::Uuid;

use super::error::{conditional, conflict_pause, sdk_error, Cancelled, CONFLICT_ATTEMPTS};
use super::item::{n, s, Fields, Item};
use super::revocations::put_revocation;
use crate::refresh::TokenHash;
use crate::store::rotation::{rotation_step, RotationStep};
use crate::store::{RefreshRecord, RefreshStore, Rotation};
use crate::Error;

/// Refresh tokens and revoked families in the security table keyed by `pk`, each item
/// expiring by TTL on `expires_at`.
#[derive(Clone)]
pub struct DynamoRefreshStore {
    client: Client,
    table: String,
}

impl DynamoRefreshStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn refresh_key(hash: &TokenHash) -> String {
        format!("REFRESH#{}", hash.as_str())
    }

    pub fn family_key(family: Uuid) -> String {
        format!("FAMILY#{family}")
    }

    fn rotation(
        &self,
        presented: &TokenHash,
        next: &RefreshRecord,
        now: i64,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let retire = Update::builder()
            .table_name(&self.table)
            .key("pk", s(Self::refresh_key(presented)))
            .update_expression("SET #used = :true")
            .condition_expression("#used = :false")
            .expression_attribute_names("#used", "used")
            .expression_attribute_values(":true", AttributeValue::Bool(true))
            .expression_attribute_values(":false", AttributeValue::Bool(false))
            .build()
            .map_err(Error::internal)?;
        let family_alive = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(Self::family_key(next.family)))
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(":now", n(now))
            .build()
            .map_err(Error::internal)?;
        let successor = Put::builder()
            .table_name(&self.table)
            .set_item(Some(refresh_item(next)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(Error::internal)?;
        Ok(vec![
            TransactWriteItem::builder().update(retire).build(),
            TransactWriteItem::builder()
                .condition_check(family_alive)
                .build(),
            TransactWriteItem::builder().put(successor).build(),
        ])
    }

    /// Carries out a step that stores no successor.
    async fn conclude(&self, step: RotationStep) -> Result<Rotation, Error> {
        match step {
            RotationStep::Refuse => Ok(Rotation::Refused),
            RotationStep::RevokeFamily { family, until } => {
                self.revoke_family(family, until).await?;
                Ok(Rotation::Reused { family })
            }
            RotationStep::Rotate(_) => Err(Error::internal(
                "DynamoDB TransactWriteItems (refresh): cancelled without a failed condition",
            )),
        }
    }
}

fn refresh_item(record: &RefreshRecord) -> Item {
    Item::from([
        (
            "pk".into(),
            s(DynamoRefreshStore::refresh_key(&record.hash)),
        ),
        ("family".into(), s(record.family.to_string())),
        ("user_id".into(), s(record.user_id.to_string())),
        ("username".into(), s(&record.username)),
        ("expires_at".into(), n(record.expires_at)),
        ("used".into(), AttributeValue::Bool(record.used)),
    ])
}

fn refresh_from(hash: &TokenHash, item: &Item) -> Result<RefreshRecord, Error> {
    let f = Fields {
        item,
        what: "refresh token",
    };
    Ok(RefreshRecord {
        hash: hash.clone(),
        family: f.uuid("family")?,
        user_id: f.uuid("user_id")?,
        username: f.text("username")?.to_owned(),
        expires_at: f.number("expires_at")?,
        used: f.flag("used")?,
    })
}

/// Why a rotation transaction did not commit.
enum RotationRefusal {
    /// A condition failed: the token was retired meanwhile, its family is revoked, or
    /// both.
    Learnt {
        used: bool,
        family_revoked: bool,
    },
    Conflict,
    Final(Error),
}

fn rotation_refusal(err: SdkError<TransactWriteItemsError>) -> RotationRefusal {
    let cancelled = match Cancelled::of(err) {
        Ok(cancelled) => cancelled,
        Err(error) => return RotationRefusal::Final(error),
    };
    let (used, family_revoked) = (cancelled.failed(0), cancelled.failed(1));
    if used || family_revoked {
        return RotationRefusal::Learnt {
            used,
            family_revoked,
        };
    }
    match cancelled.otherwise("refresh") {
        Ok(_) => RotationRefusal::Conflict,
        Err(error) => RotationRefusal::Final(error),
    }
}

#[async_trait]
impl RefreshStore for DynamoRefreshStore {
    async fn put_refresh(&self, record: &RefreshRecord) -> Result<(), Error> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(refresh_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        conditional("PutItem", sent)?
            .ok_or_else(|| Error::internal("refresh token hash collision"))?;
        Ok(())
    }

    async fn find_refresh(&self, hash: &TokenHash) -> Result<Option<RefreshRecord>, Error> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(Self::refresh_key(hash)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        out.item().map(|item| refresh_from(hash, item)).transpose()
    }

    /// One consistent `GetItem` of the presented token, then one `TransactWriteItems`
    /// that retires it (if still unused), checks that its family is not revoked and
    /// puts the successor. The conditions that cancel the transaction are what the read
    /// could not know, and the step is decided again with them. A transaction lost to a
    /// concurrent one is retried from the read.
    async fn rotate_refresh(
        &self,
        presented: &TokenHash,
        next: &TokenHash,
        next_expires_at: i64,
        now: i64,
    ) -> Result<Rotation, Error> {
        let step = |record: Option<&RefreshRecord>, family_revoked: bool| {
            rotation_step(record, family_revoked, next, next_expires_at, now)
        };
        let mut attempt = 1;
        loop {
            let old = self.find_refresh(presented).await?;
            let successor = match step(old.as_ref(), false) {
                RotationStep::Rotate(successor) => successor,
                other => return self.conclude(other).await,
            };
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(self.rotation(presented, &successor, now)?))
                .send()
                .await;
            let Err(err) = sent else {
                return Ok(Rotation::Rotated(successor));
            };
            match rotation_refusal(err) {
                RotationRefusal::Learnt {
                    used,
                    family_revoked,
                } => {
                    let known = old.map(|o| RefreshRecord {
                        used: o.used || used,
                        ..o
                    });
                    return self.conclude(step(known.as_ref(), family_revoked)).await;
                }
                RotationRefusal::Final(error) => return Err(error),
                RotationRefusal::Conflict if attempt >= CONFLICT_ATTEMPTS => {
                    return Err(Error::unavailable(
                        "DynamoDB TransactWriteItems (refresh): still conflicting after retries",
                    ))
                }
                RotationRefusal::Conflict => {
                    conflict_pause(attempt).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn revoke_family(&self, family: Uuid, until: i64) -> Result<(), Error> {
        put_revocation(&self.client, &self.table, Self::family_key(family), until).await
    }
}
