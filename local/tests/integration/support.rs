//! Helpers of the local crate's tests: a stack from configuration pairs, the
//! configuration of a stack on temporary DynamoDB tables, and a stack on either store
//! for tests that run on both.

use reqwest::Client;

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

/// The local stack with `JWT_SECRET` [`SECRET`] on the in-memory stores or on fresh
/// DynamoDB tables, which [`Running::stop`] deletes, and a client to call it with.
pub struct Running {
    pub http: Client,
    pub stack: Stack,
    pub tables: Option<TempTables>,
}

impl Running {
    /// The stack on the in-memory stores, configured by [`config_with_secret`]`(pairs)`.
    pub async fn memory(pairs: &[(&str, &str)]) -> Self {
        let stack = local::start(&config_with_secret(pairs), Ports::ANY)
            .await
            .unwrap();
        Self {
            http: Client::new(),
            stack,
            tables: None,
        }
    }

    /// The stack on fresh DynamoDB tables with `JWT_SECRET` [`SECRET`] and `pairs`;
    /// `None` (the test skips) when `DYNAMODB_ENDPOINT` is unset outside CI.
    pub async fn dynamodb(pairs: &[(&str, &str)]) -> Option<Self> {
        let tables = TempTables::create().await?;
        let config = on_tables(&tables, &[&[("JWT_SECRET", SECRET)], pairs].concat());
        let stack = local::start(&config, Ports::ANY).await.unwrap();
        Some(Self {
            http: Client::new(),
            stack,
            tables: Some(tables),
        })
    }

    /// Stops the stack, then checks and deletes its tables if it has any.
    pub async fn stop(self) {
        self.stack.stop().await;
        if let Some(tables) = self.tables {
            tables.delete().await;
        }
    }
}

/// The two tests of `scenario`, an async fn taking what a [`Running`] stack converts
/// into: `in_memory` on the in-memory stores and `on_dynamodb` on DynamoDB tables
/// (skipped when `DYNAMODB_ENDPOINT` is unset outside CI), both configured with `pairs`.
macro_rules! on_both_stores {
    ($scenario:ident($pairs:expr) => $in_memory:ident, $on_dynamodb:ident) => {
        #[tokio::test]
        async fn $in_memory() {
            let running = $crate::support::Running::memory($pairs).await;
            $scenario(running.into()).await;
        }

        #[tokio::test]
        async fn $on_dynamodb() {
            let Some(running) = $crate::support::Running::dynamodb($pairs).await else {
                return;
            };
            $scenario(running.into()).await;
        }
    };
}
pub(crate) use on_both_stores;
