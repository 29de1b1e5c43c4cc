//! The key registry: the current key first, then retired ones until they expire.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::lock;
use crate::{KeyStore, PublicKey};
use errors::Error;

/// The public keys.
#[derive(Default)]
pub struct MemoryKeyStore {
    keys: Mutex<Vec<PublicKey>>,
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn activate_key(
        &self,
        key: &PublicKey,
        retire_after: Duration,
        now: i64,
    ) -> Result<(), Error> {
        let mut keys = lock(&self.keys);
        if let Some(next) = crate::activated(&keys, key, retire_after, now) {
            *keys = next;
        }
        Ok(())
    }

    async fn public_key(&self, kid: &str, now: i64) -> Result<Option<PublicKey>, Error> {
        Ok(lock(&self.keys)
            .iter()
            .find(|k| k.kid == kid && k.alive(now))
            .cloned())
    }

    async fn published_keys(&self, now: i64) -> Result<Vec<PublicKey>, Error> {
        Ok(lock(&self.keys)
            .iter()
            .filter(|k| k.alive(now))
            .cloned()
            .collect())
    }
}
