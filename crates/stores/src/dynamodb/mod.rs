//! DynamoDB stores (feature `dynamodb`), one file per store over one client; keys, items
//! and calls are in `TABLES.md`.

mod accounts;
mod attempts;
mod client;
mod conditions;
mod cross_table;
mod error;
mod item;
mod keys;
mod mail_tokens;
pub mod pk;
mod profiles;
mod retry;
mod sessions;
mod transact;

pub use accounts::DynamoAccountStore;
pub use attempts::DynamoLoginAttemptStore;
/// The DynamoDB client's HTTP client, now every AWS client's ([`aws_client::https`]).
pub use aws_client::https;
pub use client::{client, https_client, warm_up};
pub use cross_table::DynamoCrossTableWrites;
pub use keys::DynamoKeyStore;
pub use mail_tokens::DynamoMailTokenStore;
pub use profiles::DynamoProfileStore;
pub use sessions::{DynamoSessionStore, SESSIONS_INDEX};
