//! Profiles in one table keyed by `user_id`, written with conditions so that a lost
//! race is a status code and never an overwrite.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_sdk_dynamodb::Client;
use uuid::Uuid;

use super::error::{conditional, get_consistent, sdk_error};
use super::item::{s, timestamp, Fields, Item};
use crate::store::{Cursor, Page, Profile, ProfilePatch, ProfileStore};
use crate::Error;

/// Profiles in one table keyed by `user_id`.
#[derive(Clone)]
pub struct DynamoProfileStore {
    client: Client,
    table: String,
}

impl DynamoProfileStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn profile_key(user_id: Uuid) -> AttributeValue {
    s(user_id.to_string())
}

fn profile_from(item: &Item) -> Result<Profile, Error> {
    let f = Fields {
        item,
        what: "profile",
    };
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
    async fn create(&self, profile: &Profile) -> Result<(), Error> {
        let item = Item::from([
            ("user_id".into(), profile_key(profile.user_id)),
            ("username".into(), s(&profile.username)),
            ("email".into(), s(&profile.email)),
            ("full_name".into(), s(&profile.full_name)),
            ("bio".into(), s(&profile.bio)),
            ("created_at".into(), timestamp(&profile.created_at)),
        ]);
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(user_id)")
            .send()
            .await;
        conditional("PutItem", sent)?.ok_or(Error::ProfileExists)?;
        Ok(())
    }

    async fn get(&self, user_id: Uuid) -> Result<Option<Profile>, Error> {
        let item =
            get_consistent(&self.client, &self.table, ("user_id", profile_key(user_id))).await?;
        item.as_ref().map(profile_from).transpose()
    }

    async fn update(&self, user_id: Uuid, patch: &ProfilePatch) -> Result<Profile, Error> {
        let fields: Vec<(&str, &String)> = [
            ("full_name", patch.full_name.as_ref()),
            ("bio", patch.bio.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        if fields.is_empty() {
            return self.get(user_id).await?.ok_or(Error::UserNotFound);
        }
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .condition_expression("attribute_exists(user_id)")
            .return_values(ReturnValue::AllNew);
        let mut sets = Vec::new();
        for (name, value) in fields {
            sets.push(format!("#{name} = :{name}"));
            request = request
                .expression_attribute_names(format!("#{name}"), name)
                .expression_attribute_values(format!(":{name}"), s(value));
        }
        let sent = request
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await;
        conditional("UpdateItem", sent)?
            .ok_or(Error::UserNotFound)?
            .attributes()
            .ok_or_else(|| Error::internal("DynamoDB UpdateItem returned no attributes"))
            .and_then(profile_from)
    }

    async fn delete(&self, user_id: Uuid) -> Result<(), Error> {
        let sent = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("user_id", profile_key(user_id))
            .condition_expression("attribute_exists(user_id)")
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
