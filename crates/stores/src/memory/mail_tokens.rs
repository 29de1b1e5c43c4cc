//! Mailed tokens in the security table.

use std::sync::Arc;

use async_trait::async_trait;

use super::MemoryTables;
use crate::{MailToken, MailTokenStore};
use domain::refresh::TokenHash;
use errors::Error;

/// The mailed-token store over [`MemoryTables`].
pub struct MemoryMailTokenStore {
    tables: Arc<MemoryTables>,
}

impl MemoryMailTokenStore {
    /// The mailed-token store over `tables`.
    pub fn over(tables: Arc<MemoryTables>) -> Self {
        Self { tables }
    }
}

#[async_trait]
impl MailTokenStore for MemoryMailTokenStore {
    async fn issue(&self, token: &MailToken) -> Result<(), Error> {
        let now = chrono::Utc::now().timestamp();
        self.tables.security().issue(token, now);
        Ok(())
    }

    async fn find(&self, hash: &TokenHash) -> Result<Option<MailToken>, Error> {
        Ok(self.tables.security().mail_token(hash).cloned())
    }
}
