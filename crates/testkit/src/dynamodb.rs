//! Throwaway, uniquely named DynamoDB tables (feature `dynamodb`) on the server at
//! `DYNAMODB_ENDPOINT`, made as `template.yaml` defines them ([`template`]), the
//! accounts-table consistency check run before deletion ([`consistency`]), and a
//! stand-in that loses every transaction ([`conflicting`]).

mod conflicting;
mod consistency;
mod template;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, BillingMode, KeyType, TableStatus, TimeToLiveSpecification,
};

use settings::{HttpClientConfig, ReadConfig};
use stores::Stores;
use stores::config::{StoreAccess, StoreConfig};

pub use conflicting::always_conflicting;
pub use consistency::{account_table_problems, scan_all};
use template::{TableSpec, key_element, template_tables};

type Item = HashMap<String, AttributeValue>;

/// The text attribute `name` of `item`, if it has one.
fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub struct TempTables {
    pub client: Client,
    /// `STORE=dynamodb` pointed at these tables.
    pub store: StoreConfig,
}

impl TempTables {
    /// A binary's configuration with `STORE=dynamodb` pointed at these tables, the
    /// rest as the empty environment gives it.
    pub fn config<C: ReadConfig>(&self) -> C {
        let store = &self.store;
        C::from_lookup(|key| match key {
            "STORE" => Some("dynamodb".into()),
            "DYNAMODB_ENDPOINT" => store.endpoint.clone(),
            "ACCOUNTS_TABLE" => Some(store.tables.accounts.clone()),
            "PROFILES_TABLE" => Some(store.tables.profiles.clone()),
            "SECURITY_TABLE" => Some(store.tables.security.clone()),
            _ => None,
        })
        .expect("test configuration is valid")
    }

    /// `None` (the test skips) when `DYNAMODB_ENDPOINT` is unset outside CI.
    pub async fn create() -> Option<Self> {
        let endpoint = super::require_env("DYNAMODB_ENDPOINT")?;
        Some(Self::create_at(&endpoint).await)
    }

    /// Fresh tables on the server at `endpoint`.
    pub async fn create_at(endpoint: &str) -> Self {
        let endpoint = endpoint.to_owned();
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let store = StoreConfig::read(&settings::Vars::new(&|key| match key {
            "STORE" => Some("dynamodb".into()),
            "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
            "ACCOUNTS_TABLE" => Some(format!("accounts-{suffix}")),
            "PROFILES_TABLE" => Some(format!("profiles-{suffix}")),
            "SECURITY_TABLE" => Some(format!("security-{suffix}")),
            _ => None,
        }))
        .expect("test configuration is valid");
        let client = stores::dynamodb::client(&StoreAccess {
            store: store.clone(),
            http: HttpClientConfig::default(),
        })
        .await;
        let tables = Self { client, store };
        let names = tables.store.tables.clone();
        let specs = template_tables();
        for (logical_id, name) in [
            ("AccountsTable", &names.accounts),
            ("ProfilesTable", &names.profiles),
            ("SecurityTable", &names.security),
        ] {
            let spec = specs
                .get(logical_id)
                .unwrap_or_else(|| panic!("template.yaml defines no {logical_id}"));
            tables.make(name, spec).await;
        }
        tables
    }

    /// Stores on these tables, sharing this client.
    pub async fn stores(&self) -> Stores {
        Stores::from_config(&StoreAccess {
            store: self.store.clone(),
            http: HttpClientConfig::default(),
        })
        .await
        .expect("dynamodb stores build")
    }

    async fn make(&self, table: &str, spec: &TableSpec) {
        self.client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(spec.attributes.clone()))
            .set_global_secondary_indexes((!spec.indexes.is_empty()).then(|| spec.indexes.clone()))
            .key_schema(key_element(&spec.key, KeyType::Hash))
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot create table {table}: {e:?}"));
        for _ in 0..100 {
            let described = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot describe table {table}: {e:?}"));
            if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                if let Some(ttl) = &spec.ttl {
                    self.client
                        .update_time_to_live()
                        .table_name(table)
                        .time_to_live_specification(
                            TimeToLiveSpecification::builder()
                                .attribute_name(ttl)
                                .enabled(true)
                                .build()
                                .expect("TTL specification"),
                        )
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("cannot enable TTL on {table}: {e:?}"));
                }
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("table {table} did not become active");
    }

    /// Writes `item` into `table` as it is, for tests that need an item the stores would
    /// not write.
    pub async fn put(&self, table: &str, item: Item) {
        self.client
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot put an item into {table}: {e:?}"));
    }

    /// The accounts-table keys (`pk`) among `keys` that have an item.
    pub async fn account_keys_present(&self, keys: &[String]) -> Vec<String> {
        let mut present = Vec::new();
        for key in keys {
            let out = self
                .client
                .get_item()
                .table_name(&self.store.tables.accounts)
                .key(
                    "pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(key.clone()),
                )
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot read {key}: {e:?}"));
            if out.item().is_some() {
                present.push(key.clone());
            }
        }
        present
    }

    /// Every item of the security table, as text (`pk` first), for tests that check
    /// what is and is not stored.
    pub async fn security_items(&self) -> Vec<String> {
        let out = self
            .client
            .scan()
            .table_name(&self.store.tables.security)
            .consistent_read(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot scan the security table: {e:?}"));
        let mut items: Vec<String> = out
            .items()
            .iter()
            .map(|item| {
                let mut fields: Vec<String> =
                    item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                fields.sort_by_key(|f| !f.starts_with("pk="));
                fields.join(" ")
            })
            .collect();
        items.sort();
        items
    }

    /// [`account_table_problems`] of these tables' accounts table.
    pub async fn account_problems(&self) -> Vec<String> {
        account_table_problems(&self.client, &self.store.tables.accounts).await
    }

    /// Checks the accounts table ([`account_table_problems`]), deletes the tables
    /// (failures to delete are reported, not fatal), then panics if the check found
    /// a problem: every suite on DynamoDB ends with this check.
    pub async fn delete(self) {
        let problems = self.account_problems().await;
        for table in [
            &self.store.tables.accounts,
            &self.store.tables.profiles,
            &self.store.tables.security,
        ] {
            if let Err(e) = self.client.delete_table().table_name(table).send().await {
                eprintln!("could not delete test table {table}: {e:?}");
            }
        }
        assert!(
            problems.is_empty(),
            "the accounts table was inconsistent: {problems:#?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test tables on the server have the template's indexes, and a sparse one:
    /// an item without the index's keys is not in it.
    #[tokio::test]
    async fn test_tables_are_made_with_the_template_indexes() {
        let Some(tables) = TempTables::create().await else {
            return;
        };
        let security = tables.store.tables.security.clone();
        let described = tables
            .client
            .describe_table()
            .table_name(&security)
            .send()
            .await
            .expect("describe the security table");
        let names: Vec<&str> = described
            .table()
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        assert_eq!(names, ["sessions-by-user"]);
        let item = |pk: &str, user: Option<&str>, started: &str| {
            let mut item: Item = HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
                (
                    "session_started".to_owned(),
                    AttributeValue::N(started.to_owned()),
                ),
            ]);
            if let Some(user) = user {
                item.insert(
                    "session_user".to_owned(),
                    AttributeValue::S(user.to_owned()),
                );
            }
            item
        };
        for item in [
            item("SESSION#a", Some("u1"), "100"),
            item("SESSION#b", Some("u1"), "200"),
            item("SESSION#c", None, "300"),
            item("SESSION#d", Some("u2"), "400"),
        ] {
            tables.put(&security, item).await;
        }
        let out = tables
            .client
            .query()
            .table_name(&security)
            .index_name("sessions-by-user")
            .key_condition_expression("session_user = :u")
            .expression_attribute_values(":u", AttributeValue::S("u1".into()))
            .scan_index_forward(false)
            .send()
            .await
            .expect("query the index");
        let found: Vec<&str> = out.items().iter().filter_map(|i| text(i, "pk")).collect();
        assert_eq!(found, ["SESSION#b", "SESSION#a"]);
        tables.delete().await;
    }
}
