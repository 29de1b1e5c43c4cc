//! Throwaway, uniquely named DynamoDB tables (feature `dynamodb`) on the server at
//! `DYNAMODB_ENDPOINT`, and the accounts-table consistency check run before deletion.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};

use domain::{Email, Username};
use settings::{HttpClientConfig, ReadConfig};
use stores::Stores;
use stores::config::{StoreAccess, StoreConfig};
use stores::dynamodb::{DynamoAccountStore, pk};

type Item = HashMap<String, AttributeValue>;

/// The attributes an account item shares with its username claim (TABLES.md): a
/// password change updates `password_hash` and `gen` on both in one transaction.
const ACCOUNT_ATTRIBUTES: [&str; 6] = [
    "user_id",
    "username",
    "email",
    "password_hash",
    "created_at",
    "gen",
];

/// Every item of `table`, read with consistent scans page by page.
pub async fn scan_all(client: &Client, table: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start: Option<Item> = None;
    loop {
        let out = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot scan {table}: {e:?}"));
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// What is wrong with the accounts table `table`, as laid out in TABLES.md: every
/// `USER#` item has its `USERNAME#` claim (a full copy of it) and its `EMAIL#`
/// claim, both holding its `user_id`; every claim points back to an account whose
/// username or email it is (no orphan); nothing else is in the table. Empty when
/// the table is consistent.
pub async fn account_table_problems(client: &Client, table: &str) -> Vec<String> {
    let items: HashMap<String, Item> = scan_all(client, table)
        .await
        .into_iter()
        .map(|item| (text(&item, "pk").unwrap_or_default().to_owned(), item))
        .collect();
    let mut problems = Vec::new();
    for (pk, item) in &items {
        let user_id = text(item, "user_id").unwrap_or_default();
        if let Some(id) = pk.strip_prefix(pk::USER) {
            if id != user_id {
                problems.push(format!("{pk} holds user_id {user_id:?}"));
            }
            match text(item, "username").map(Username::parse) {
                Some(Ok(name)) => {
                    let claim_key = DynamoAccountStore::username_key(&name);
                    match items.get(&claim_key) {
                        None => problems.push(format!("{pk} has no claim {claim_key}")),
                        Some(claim) => {
                            for attribute in ACCOUNT_ATTRIBUTES {
                                if claim.get(attribute) != item.get(attribute) {
                                    problems.push(format!(
                                        "{claim_key} differs from {pk} in {attribute}"
                                    ));
                                }
                            }
                        }
                    }
                }
                _ => problems.push(format!("{pk} has no valid username")),
            }
            match text(item, "email").map(Email::parse) {
                Some(Ok(email)) => {
                    let claim_key = DynamoAccountStore::email_key(&email);
                    match items.get(&claim_key) {
                        None => problems.push(format!("{pk} has no claim {claim_key}")),
                        Some(claim) if text(claim, "user_id") != Some(id) => {
                            problems.push(format!(
                                "{claim_key} points to {:?}, not to {pk}",
                                text(claim, "user_id")
                            ))
                        }
                        Some(_) => {}
                    }
                }
                _ => problems.push(format!("{pk} has no valid email")),
            }
        } else if pk.starts_with(pk::USERNAME) || pk.starts_with(pk::EMAIL) {
            let account_key = format!("{}{user_id}", pk::USER);
            let Some(account) = items.get(&account_key) else {
                problems.push(format!("{pk} is orphaned: {account_key} does not exist"));
                continue;
            };
            let claimed = if pk.starts_with(pk::USERNAME) {
                text(account, "username")
                    .and_then(|name| Username::parse(name).ok())
                    .map(|name| DynamoAccountStore::username_key(&name))
            } else {
                text(account, "email")
                    .and_then(|email| Email::parse(email).ok())
                    .map(|email| DynamoAccountStore::email_key(&email))
            };
            if claimed.as_deref() != Some(pk.as_str()) {
                problems.push(format!(
                    "{pk} points to {account_key}, which claims {claimed:?}"
                ));
            }
        } else {
            problems.push(format!("unexpected item {pk:?} in the accounts table"));
        }
    }
    problems.sort();
    problems
}

pub struct TempTables {
    pub client: Client,
    /// `STORE=dynamodb` pointed at these tables.
    pub store: StoreConfig,
}

/// A table's hash key, attribute definitions, global secondary indexes and TTL
/// attribute, as `template.yaml` defines them.
#[derive(Debug)]
struct TableSpec {
    key: String,
    attributes: Vec<AttributeDefinition>,
    indexes: Vec<GlobalSecondaryIndex>,
    ttl: Option<String>,
}

/// A `KeySchema` of the template as the SDK's.
fn key_schema(id: &str, schema: &serde_yaml_ng::Value) -> Vec<KeySchemaElement> {
    schema
        .as_sequence()
        .unwrap_or_else(|| panic!("{id}: KeySchema is a list"))
        .iter()
        .map(|k| {
            let key_type = match k["KeyType"].as_str() {
                Some("HASH") => KeyType::Hash,
                Some("RANGE") => KeyType::Range,
                other => panic!("{id}: KeyType {other:?}"),
            };
            KeySchemaElement::builder()
                .attribute_name(k["AttributeName"].as_str().expect("an AttributeName"))
                .key_type(key_type)
                .build()
                .expect("key schema")
        })
        .collect()
}

/// The `GlobalSecondaryIndexes` of a table of the template as the SDK's (on-demand:
/// no provisioned throughput).
fn global_indexes(id: &str, props: &serde_yaml_ng::Value) -> Vec<GlobalSecondaryIndex> {
    let Some(indexes) = props["GlobalSecondaryIndexes"].as_sequence() else {
        assert!(
            props["GlobalSecondaryIndexes"].is_null(),
            "{id}: GlobalSecondaryIndexes is a list"
        );
        return Vec::new();
    };
    indexes
        .iter()
        .map(|index| {
            let name = index["IndexName"].as_str().expect("an IndexName");
            let where_ = format!("{id}.{name}");
            let projection = &index["Projection"];
            let projection_type = match projection["ProjectionType"].as_str() {
                Some("ALL") => ProjectionType::All,
                Some("KEYS_ONLY") => ProjectionType::KeysOnly,
                Some("INCLUDE") => ProjectionType::Include,
                other => panic!("{where_}: ProjectionType {other:?}"),
            };
            let non_key = projection["NonKeyAttributes"].as_sequence().map(|names| {
                names
                    .iter()
                    .map(|n| n.as_str().expect("a NonKeyAttributes name").to_owned())
                    .collect()
            });
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .set_key_schema(Some(key_schema(&where_, &index["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(projection_type)
                        .set_non_key_attributes(non_key)
                        .build(),
                )
                .build()
                .expect("global secondary index")
        })
        .collect()
}

/// The DynamoDB tables of the repo's `template.yaml` by logical id, so that test tables
/// are made as deployed and not from a second copy of their definitions.
fn template_tables() -> HashMap<String, TableSpec> {
    use serde_yaml_ng::Value;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let template: Value = serde_yaml_ng::from_str(&text).expect("template.yaml is YAML");
    let resources = template["Resources"]
        .as_mapping()
        .expect("template.yaml has Resources");
    let text_of = |v: &Value| v.as_str().map(str::to_owned);
    resources
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::DynamoDB::Table"))
        .map(|(id, r)| {
            let props = &r["Properties"];
            let key_schema = props["KeySchema"].as_sequence().expect("KeySchema");
            assert_eq!(
                key_schema.len(),
                1,
                "{id:?}: the stores use a hash key only"
            );
            assert_eq!(key_schema[0]["KeyType"].as_str(), Some("HASH"), "{id:?}");
            let key = text_of(&key_schema[0]["AttributeName"]).expect("a key name");
            let definitions = props["AttributeDefinitions"]
                .as_sequence()
                .expect("AttributeDefinitions");
            let key_is_a_string = definitions.iter().any(|a| {
                text_of(&a["AttributeName"]) == Some(key.clone()) && a["AttributeType"] == "S"
            });
            assert!(key_is_a_string, "{id:?}: the stores' keys are strings");
            let attributes = definitions
                .iter()
                .map(|a| {
                    let kind = match a["AttributeType"].as_str() {
                        Some("S") => ScalarAttributeType::S,
                        Some("N") => ScalarAttributeType::N,
                        Some("B") => ScalarAttributeType::B,
                        other => panic!("{id:?}: AttributeType {other:?}"),
                    };
                    AttributeDefinition::builder()
                        .attribute_name(text_of(&a["AttributeName"]).expect("an AttributeName"))
                        .attribute_type(kind)
                        .build()
                        .expect("attribute definition")
                })
                .collect();
            let name = text_of(id).expect("a logical id");
            let ttl = &props["TimeToLiveSpecification"];
            let spec = TableSpec {
                ttl: (ttl["Enabled"].as_bool() == Some(true))
                    .then(|| text_of(&ttl["AttributeName"]).expect("a TTL attribute")),
                attributes,
                indexes: global_indexes(&name, props),
                key,
            };
            (name, spec)
        })
        .collect()
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
        let key = spec.key.as_str();
        self.client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(spec.attributes.clone()))
            .set_global_secondary_indexes((!spec.indexes.is_empty()).then(|| spec.indexes.clone()))
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(key)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("key schema"),
            )
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

/// A stand-in DynamoDB on a loopback port that loses every transaction to another one
/// (`TransactionCanceledException`, every reason `TransactionConflict`) and counts
/// them. An `UpdateItem` (a login or registration counter) answers a count of 1 in an
/// open window; anything else is a `ValidationException`. Its URL, and the count.
pub async fn always_conflicting() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{HeaderMap, StatusCode};

    let transactions = Arc::new(AtomicUsize::new(0));
    let counted = transactions.clone();
    let answer = move |headers: HeaderMap| {
        let counted = counted.clone();
        async move {
            let target = headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let (status, body) = match target.rsplit('.').next() {
                Some("TransactWriteItems") => {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let conflict = serde_json::json!({"Code": "TransactionConflict",
                        "Message": "Transaction is ongoing for the item"});
                    (
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({
                            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]",
                            "CancellationReasons": [conflict.clone(), conflict.clone(), conflict],
                        }),
                    )
                }
                Some("UpdateItem") => (
                    StatusCode::OK,
                    serde_json::json!({"Attributes": {
                        "attempts": {"N": "1"},
                        "expires_at": {"N": "99999999999"},
                    }}),
                ),
                _ => (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({
                        "__type": "com.amazon.coral.validate#ValidationException",
                        "Message": format!("not served here: {target}"),
                    }),
                ),
            };
            (
                status,
                [("content-type", "application/x-amz-json-1.0")],
                body.to_string(),
            )
        }
    };
    let url = super::http::serve(axum::Router::new().fallback(answer)).await;
    (url, transactions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_security_table_is_read_with_its_sessions_index() {
        let specs = template_tables();
        let security = &specs["SecurityTable"];
        let attributes: Vec<(&str, &ScalarAttributeType)> = security
            .attributes
            .iter()
            .map(|a| (a.attribute_name(), a.attribute_type()))
            .collect();
        assert_eq!(
            attributes,
            [
                ("pk", &ScalarAttributeType::S),
                ("session_user", &ScalarAttributeType::S),
                ("session_started", &ScalarAttributeType::N),
            ]
        );
        let [index] = security.indexes.as_slice() else {
            panic!("one index: {:?}", security.indexes);
        };
        assert_eq!(index.index_name(), "sessions-by-user");
        let keys: Vec<(&str, &KeyType)> = index
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name(), k.key_type()))
            .collect();
        assert_eq!(
            keys,
            [
                ("session_user", &KeyType::Hash),
                ("session_started", &KeyType::Range)
            ]
        );
        assert_eq!(
            index.projection().and_then(|p| p.projection_type()),
            Some(&ProjectionType::All)
        );
        for other in ["AccountsTable", "ProfilesTable"] {
            assert!(specs[other].indexes.is_empty(), "{other}");
            assert_eq!(specs[other].attributes.len(), 1, "{other}");
        }
    }

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
            tables
                .client
                .put_item()
                .table_name(&security)
                .set_item(Some(item))
                .send()
                .await
                .expect("put an item");
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
