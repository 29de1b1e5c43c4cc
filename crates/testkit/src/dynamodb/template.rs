//! The DynamoDB tables of the repo's `template.yaml`, as the SDK's table definitions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};

/// A table's hash key, attribute definitions, global secondary indexes and TTL
/// attribute, as `template.yaml` defines them.
#[derive(Debug)]
pub(super) struct TableSpec {
    pub key: String,
    pub attributes: Vec<AttributeDefinition>,
    pub indexes: Vec<GlobalSecondaryIndex>,
    pub ttl: Option<String>,
}

/// The key schema element making `name` the table's or index's `key_type` key.
pub(super) fn key_element(name: &str, key_type: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .expect("key schema")
}

/// The definition of attribute `name` of type `kind`.
fn attribute(name: &str, kind: ScalarAttributeType) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(kind)
        .build()
        .expect("attribute definition")
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
            key_element(
                k["AttributeName"].as_str().expect("an AttributeName"),
                key_type,
            )
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
pub(super) fn template_tables() -> HashMap<String, TableSpec> {
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
                    let name = text_of(&a["AttributeName"]).expect("an AttributeName");
                    attribute(&name, kind)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_security_table_is_read_with_its_sessions_index() {
        let specs = template_tables();
        let security = &specs["SecurityTable"];
        assert_eq!(
            security.attributes,
            [
                attribute("pk", ScalarAttributeType::S),
                attribute("session_user", ScalarAttributeType::S),
                attribute("session_started", ScalarAttributeType::N),
            ]
        );
        let [index] = security.indexes.as_slice() else {
            panic!("one index: {:?}", security.indexes);
        };
        assert_eq!(index.index_name(), "sessions-by-user");
        assert_eq!(
            index.key_schema(),
            [
                key_element("session_user", KeyType::Hash),
                key_element("session_started", KeyType::Range)
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
}
