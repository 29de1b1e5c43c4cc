//! Profiles in one table keyed by `user_id`, written with conditions so that a lost
//! race is a status code and never an overwrite, and only while the writer's account
//! and session live (conditions on the security table in the same transaction).

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use uuid::Uuid;

use super::conditions::{NO_PROFILE, NOT_DELETED, PROFILE_EXISTS, SESSION_LIVE_AT_GENERATION};
use super::error::{conditional, get_consistent, sdk_error};
use super::item::{Fields, Item, number_attr, string_attr, timestamp};
use super::retry::transact_with_retry;
use super::sessions::{DynamoSessionStore, user_allows};
use super::transact;
use crate::config::Tables;
use crate::{Cursor, Page, Profile, ProfilePatch, ProfileStore, WriteGuard};
use errors::Error;

/// Profiles in one table keyed by `user_id`; writes are checked against the security
/// table's `SESSION#` and `USER#` items.
#[derive(Clone)]
pub struct DynamoProfileStore {
    client: Client,
    table: String,
    security: String,
}

impl DynamoProfileStore {
    pub fn new(client: Client, tables: &Tables) -> Self {
        Self {
            client,
            table: tables.profiles.clone(),
            security: tables.security.clone(),
        }
    }

    /// The conditions of `guard` on the security table: the user's `USER#` marker lets
    /// the session live as read (or, without a session, has no `deleted_at`), and the
    /// `SESSION#` item is the user's, of the generation read, not ended, not expired.
    fn guard(&self, guard: &WriteGuard) -> Result<Vec<TransactWriteItem>, Error> {
        let Some(live) = guard.session else {
            let marker = ConditionCheck::builder()
                .table_name(&self.security)
                .key(
                    "pk",
                    string_attr(DynamoSessionStore::user_key(guard.user_id)),
                )
                .condition_expression(NOT_DELETED)
                .build()
                .map_err(Error::internal)?;
            return Ok(vec![transact::check(marker)]);
        };
        let session = ConditionCheck::builder()
            .table_name(&self.security)
            .key("pk", string_attr(DynamoSessionStore::session_key(live.sid)))
            .condition_expression(SESSION_LIVE_AT_GENERATION)
            .expression_attribute_values(":uid", string_attr(guard.user_id.to_string()))
            .expression_attribute_values(":gen", number_attr(live.generation as i64))
            .expression_attribute_values(":now", number_attr(guard.now))
            .build()
            .map_err(Error::internal)?;
        Ok(vec![
            transact::check(user_allows(
                &self.security,
                guard.user_id,
                live.sid,
                live.generation,
            )?),
            transact::check(session),
        ])
    }

    /// Sends `write` (a profile write whose condition failing means `refused`) with the
    /// conditions of `guard` in one transaction, again while it loses races.
    async fn guarded(
        &self,
        write: TransactWriteItem,
        guard: &WriteGuard,
        refused: Error,
    ) -> Result<(), Error> {
        let mut items = vec![write];
        items.extend(self.guard(guard)?);
        let conditions = items.len();
        match transact_with_retry(&self.client, "profile", items).await? {
            None => Ok(()),
            Some(failed) if (1..conditions).any(|i| failed.failed(i)) => Err(Error::Unauthorized),
            Some(_) => Err(refused),
        }
    }
}

fn profile_key(user_id: Uuid) -> AttributeValue {
    string_attr(user_id.to_string())
}

fn profile_from(item: &Item) -> Result<Profile, Error> {
    let f = Fields::of(item, "profile");
    Ok(Profile {
        user_id: f.uuid("user_id")?,
        username: f.text("username")?.to_owned(),
        email: f.text("email")?.to_owned(),
        full_name: f.text("full_name")?.to_owned(),
        bio: f.text("bio")?.to_owned(),
        created_at: f.time("created_at")?,
    })
}

#[async_trait]
impl ProfileStore for DynamoProfileStore {
    /// One `TransactWriteItems`: the `Put` (if no profile has its `user_id`) and the
    /// conditions of `guard`.
    async fn create(&self, profile: &Profile, guard: &WriteGuard) -> Result<(), Error> {
        let item = Item::from([
            ("user_id".into(), profile_key(profile.user_id)),
            ("username".into(), string_attr(&profile.username)),
            ("email".into(), string_attr(&profile.email)),
            ("full_name".into(), string_attr(&profile.full_name)),
            ("bio".into(), string_attr(&profile.bio)),
            ("created_at".into(), timestamp(&profile.created_at)),
        ]);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(NO_PROFILE)
            .build()
            .map_err(Error::internal)?;
        let write = transact::put(put);
        self.guarded(write, guard, Error::ProfileExists).await
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        let item =
            get_consistent(&self.client, &self.table, ("user_id", profile_key(user_id))).await?;
        item.as_ref().map(profile_from).transpose()
    }

    /// One `TransactWriteItems`: an `Update` that `SET`s only the fields present (if
    /// the profile exists), or for an empty patch a `ConditionCheck` that it exists, and
    /// the conditions of `guard`.
    async fn update(
        &self,
        user_id: Uuid,
        patch: &ProfilePatch,
        guard: &WriteGuard,
    ) -> Result<(), Error> {
        let fields: Vec<(&str, &String)> = [
            ("full_name", patch.full_name.as_ref()),
            ("bio", patch.bio.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        let write = if fields.is_empty() {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("user_id", profile_key(user_id))
                .condition_expression(PROFILE_EXISTS)
                .build()
                .map_err(Error::internal)?;
            transact::check(check)
        } else {
            let mut update = Update::builder()
                .table_name(&self.table)
                .key("user_id", profile_key(user_id))
                .condition_expression(PROFILE_EXISTS);
            let mut sets = Vec::new();
            for (name, value) in fields {
                sets.push(format!("#{name} = :{name}"));
                update = update
                    .expression_attribute_names(format!("#{name}"), name)
                    .expression_attribute_values(format!(":{name}"), string_attr(value));
            }
            let update = update
                .update_expression(format!("SET {}", sets.join(", ")))
                .build()
                .map_err(Error::internal)?;
            transact::update(update)
        };
        self.guarded(write, guard, Error::UserNotFound).await
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .condition_expression(PROFILE_EXISTS)
            .send()
            .await;
        conditional("DeleteItem", sent)?.ok_or(Error::UserNotFound)?;
        Ok(())
    }

    /// Scans `limit + 1` items so that `next` is only set when more follow. A page can
    /// still come back shorter than `limit` (DynamoDB stops a scan at 1 MB); its `next`
    /// then continues from where DynamoDB stopped, and only a page without `next` is
    /// the last.
    async fn list(&self, limit: usize, after: Option<Cursor>) -> Result<Page<Profile>, Error> {
        if limit == 0 {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        }
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .consistent_read(true)
            .set_exclusive_start_key(
                after.map(|c| Item::from([("user_id".into(), profile_key(c.last_key()))])),
            )
            .send()
            .await
            .map_err(|e| sdk_error("Scan", e))?;
        let mut items = out
            .items()
            .iter()
            .map(profile_from)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|p| Cursor::after(p.user_id))
        } else {
            match out.last_evaluated_key() {
                Some(key) => Some(Cursor::after(
                    Fields {
                        item: key,
                        what: "scan position",
                    }
                    .uuid("user_id")?,
                )),
                None => None,
            }
        };
        Ok(Page { items, next })
    }
}
