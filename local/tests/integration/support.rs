//! Helpers of the local crate's tests: a stack from configuration pairs, and the
//! configuration of a stack on temporary DynamoDB tables.

use local::Config;
use local::{Ports, Stack};
use testkit::dynamodb::TempTables;
use testkit::{SECRET, config};

/// The local stack on free ports, configured by `pairs` alone.
pub async fn stack(pairs: &[(&str, &str)]) -> Stack {
    local::start(&config(pairs), Ports::ANY).await.unwrap()
}

/// `STORE=dynamodb` on `tables`, then `pairs`, as [`config`] gives it.
pub fn on_tables(tables: &TempTables, pairs: &[(&str, &str)]) -> Config {
    let c = tables;
    let endpoint = c.store.endpoint.clone().unwrap();
    let mut all = vec![
        ("STORE", "dynamodb"),
        ("DYNAMODB_ENDPOINT", endpoint.as_str()),
        ("ACCOUNTS_TABLE", c.store.tables.accounts.as_str()),
        ("PROFILES_TABLE", c.store.tables.profiles.as_str()),
        ("SECURITY_TABLE", c.store.tables.security.as_str()),
    ];
    all.extend_from_slice(pairs);
    config(&all)
}

/// [`config`] with `JWT_SECRET` [`SECRET`] under `pairs`.
pub fn config_with_secret(pairs: &[(&str, &str)]) -> Config {
    config(&[&[("JWT_SECRET", SECRET)], pairs].concat())
}
