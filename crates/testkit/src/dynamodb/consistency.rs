//! The accounts-table consistency check every suite on DynamoDB runs before deleting
//! its tables, and the consistent scan it reads the table with.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;

use domain::{Email, Username};
use stores::dynamodb::{DynamoAccountStore, pk};

use super::{Item, text};

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
