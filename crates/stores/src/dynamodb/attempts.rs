//! Login-attempt counters in the security table, kept by atomic `ADD`.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::ReturnValue;

use super::conditions::{WINDOW_CLOSED, WINDOW_OPEN_OR_NEW, WINDOW_OPEN_WITH_ATTEMPTS};
use super::error::{conditional, sdk_error};
use super::item::{Fields, number_attr, string_attr};
use super::retry::CONFLICT_ATTEMPTS;
use crate::{AttemptKey, Attempts, LoginAttemptStore};
use errors::Error;

/// Login-attempt counters in the security table keyed by `pk`, each item expiring by
/// TTL on `expires_at` (the end of its window).
#[derive(Clone)]
pub struct DynamoLoginAttemptStore {
    client: Client,
    table: String,
}

impl DynamoLoginAttemptStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// [`pk::attempt`](super::pk::attempt).
    pub fn attempt_key(key: &AttemptKey) -> String {
        super::pk::attempt(key)
    }
}

#[async_trait]
impl LoginAttemptStore for DynamoLoginAttemptStore {
    /// One `UpdateItem` that `ADD`s 1 while the window is open (or the item absent) and
    /// sets its end once. A closed window that TTL has not removed yet fails that
    /// condition and is replaced by a `PutItem` starting a new window at 1.
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error> {
        let pk = Self::attempt_key(key);
        let window_ends_at =
            now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        for _ in 0..CONFLICT_ATTEMPTS {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", string_attr(&pk))
                .update_expression(
                    "ADD #attempts :one SET expires_at = if_not_exists(expires_at, :end)",
                )
                .condition_expression(WINDOW_OPEN_OR_NEW)
                .expression_attribute_names("#attempts", "attempts")
                .expression_attribute_values(":one", number_attr(1))
                .expression_attribute_values(":end", number_attr(window_ends_at))
                .expression_attribute_values(":now", number_attr(now))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            if let Some(out) = conditional("UpdateItem", counted)? {
                let item = out
                    .attributes()
                    .ok_or_else(|| Error::internal("DynamoDB UpdateItem returned no attributes"))?;
                let f = Fields::of(item, "attempt counter");
                return Ok(Attempts {
                    count: u64::try_from(f.number("attempts")?).unwrap_or(0),
                    window_ends_at: f.number("expires_at")?,
                });
            }
            let restarted = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", string_attr(&pk))
                .item("attempts", number_attr(1))
                .item("expires_at", number_attr(window_ends_at))
                .condition_expression(WINDOW_CLOSED)
                .expression_attribute_values(":now", number_attr(now))
                .send()
                .await;
            if conditional("PutItem", restarted)?.is_some() {
                return Ok(Attempts {
                    count: 1,
                    window_ends_at,
                });
            }
        }
        Err(Error::unavailable(
            "DynamoDB attempt counter: still contended after retries",
        ))
    }

    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error> {
        let released = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", string_attr(Self::attempt_key(key)))
            .update_expression("ADD #attempts :minus_one")
            .condition_expression(WINDOW_OPEN_WITH_ATTEMPTS)
            .expression_attribute_names("#attempts", "attempts")
            .expression_attribute_values(":minus_one", number_attr(-1))
            .expression_attribute_values(":zero", number_attr(0))
            .expression_attribute_values(":now", number_attr(now))
            .send()
            .await;
        conditional("UpdateItem", released)?;
        Ok(())
    }

    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", string_attr(Self::attempt_key(key)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("DeleteItem", e))
    }
}
