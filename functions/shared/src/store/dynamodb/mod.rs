//! DynamoDB stores (feature `dynamodb`): accounts guarded by claim items written in one
//! transaction, profiles by conditional writes, and in the security table refresh
//! tokens rotated in one transaction, access revocations, and attempt counters kept by
//! atomic `ADD`. Keys and calls are in `TABLES.md`.

mod accounts;
mod attempts;
mod client;
mod error;
mod item;
mod profiles;
mod refresh;
mod revocations;

pub use accounts::DynamoAccountStore;
pub use attempts::DynamoLoginAttemptStore;
pub use client::client;
pub use profiles::DynamoProfileStore;
pub use refresh::DynamoRefreshStore;
pub use revocations::DynamoRevocationStore;
