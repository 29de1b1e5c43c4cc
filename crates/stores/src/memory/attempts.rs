//! Login- and registration-attempt counters under one lock, so a count is one step;
//! closed windows are swept every so many writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{Sweeps, lock};
use crate::{AttemptKey, Attempts, LoginAttemptStore};
use errors::Error;

#[derive(Default)]
struct Counters {
    attempts: HashMap<AttemptKey, Attempts>,
    sweeps: Sweeps,
}

/// The attempt counters.
#[derive(Default)]
pub struct MemoryLoginAttemptStore {
    inner: Mutex<Counters>,
}

impl MemoryLoginAttemptStore {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl LoginAttemptStore for MemoryLoginAttemptStore {
    async fn count_attempt(
        &self,
        key: &AttemptKey,
        window: Duration,
        now: i64,
    ) -> Result<Attempts, Error> {
        let mut counters = lock(&self.inner);
        let window_ends_at =
            now.saturating_add(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
        let attempts = counters
            .attempts
            .entry(key.clone())
            .and_modify(|a| {
                if a.window_ends_at > now {
                    a.count += 1;
                } else {
                    *a = Attempts {
                        count: 1,
                        window_ends_at,
                    };
                }
            })
            .or_insert(Attempts {
                count: 1,
                window_ends_at,
            });
        let attempts = *attempts;
        if counters.sweeps.wrote() {
            counters.attempts.retain(|_, a| a.window_ends_at > now);
        }
        Ok(attempts)
    }

    async fn release_attempt(&self, key: &AttemptKey, now: i64) -> Result<(), Error> {
        let mut counters = lock(&self.inner);
        if let Some(a) = counters.attempts.get_mut(key)
            && a.window_ends_at > now
            && a.count > 0
        {
            a.count -= 1;
        }
        Ok(())
    }

    async fn clear_attempts(&self, key: &AttemptKey) -> Result<(), Error> {
        lock(&self.inner).attempts.remove(key);
        Ok(())
    }
}
