//! bcrypt hashing and checking, always off the async executor, a bounded number at
//! once.

use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::HashingLimits;
use domain::Password;
use errors::Error;

/// Hashes and checks passwords at one bcrypt cost, at most [`HashingLimits::concurrency`]
/// at once: a request that finds every slot taken waits [`HashingLimits::queue`] at
/// most, then is refused with [`Error::PasswordChecksBusy`] without hashing. Without
/// the bound, a burst of logins queues bcrypt on the blocking pool for longer than any
/// caller waits, and every request behind it times out.
#[derive(Clone)]
pub struct Passwords {
    cost: u32,
    dummy_hash: String,
    slots: Arc<Semaphore>,
    queue: Duration,
}

/// When a refused password check is worth trying again: a bcrypt run takes a fraction
/// of a second.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

impl Passwords {
    /// Hashing at `cost`, one run per core at once.
    pub fn new(cost: u32) -> Self {
        Self::limited(cost, HashingLimits::default())
    }

    /// Hashing at `cost` within `limits`.
    pub fn limited(cost: u32, limits: HashingLimits) -> Self {
        Self {
            cost,
            dummy_hash: dummy_hash(cost),
            slots: Arc::new(Semaphore::new(limits.concurrency.max(1))),
            queue: limits.queue,
        }
    }

    /// A slot to hash in, held until the bcrypt run ends (even when the request that
    /// asked for it is gone): at once when one is free, else within the queue deadline.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, Error> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.queue, self.slots.clone().acquire_owned()).await {
            Ok(permit) => permit.map_err(Error::internal),
            Err(_) => {
                tracing::warn!("password check refused: every bcrypt slot stayed busy");
                Err(Error::PasswordChecksBusy {
                    retry_after_secs: BUSY_RETRY_AFTER_SECS,
                })
            }
        }
    }

    pub async fn hash(&self, password: &Password) -> Result<String, Error> {
        let slot = self.slot().await?;
        let password = password.clone();
        let cost = self.cost;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            bcrypt::hash(password.expose(), cost)
        })
        .await
        .map_err(|e| Error::PasswordHash(e.to_string()))?
        .map_err(|e| Error::PasswordHash(e.to_string()))
    }

    /// Whether `hash` was made at another cost than this one's: a login that verified
    /// it should store a hash of the password at this cost ([`Passwords::hash`]), so
    /// that a known account's check costs what an unknown username's does.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash.parse::<bcrypt::HashParts>()
            .is_ok_and(|parts| parts.get_cost() != self.cost)
    }

    /// Checks `password` against `hash`, or against a dummy hash of the same cost when
    /// there is no account, so both take the same time.
    pub async fn verify(&self, password: &Password, hash: Option<&str>) -> Result<bool, Error> {
        let slot = self.slot().await?;
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            bcrypt::verify(password.expose(), &hash)
        })
        .await
        .map_err(Error::internal)?
        .map_err(Error::internal)?;
        Ok(known && matched)
    }
}

/// A well-formed bcrypt hash of nothing anyone knows, built without hashing so that
/// cold starts stay fast.
fn dummy_hash(cost: u32) -> String {
    use base64::engine::{GeneralPurpose, general_purpose::NO_PAD};
    use base64::{Engine, alphabet};
    const BCRYPT_B64: GeneralPurpose = GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD);
    let mut salt = [0u8; 16];
    let mut digest = [0u8; 23];
    let mut rng = rand::rng();
    rng.fill_bytes(&mut salt);
    rng.fill_bytes(&mut digest);
    format!(
        "$2b${cost:02}${}{}",
        BCRYPT_B64.encode(salt),
        BCRYPT_B64.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let p = Passwords::new(4);
        let good = Password::parse("correct horse".into()).unwrap();
        let bad = Password::parse("wrong horse!".into()).unwrap();
        let hash = p.hash(&good).await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(p.verify(&good, Some(&hash)).await.unwrap());
        assert!(!p.verify(&bad, Some(&hash)).await.unwrap());
    }

    /// Passwords at cost 4 with one bcrypt slot, waited for at most `queue`.
    fn one_slot(queue: Duration) -> Passwords {
        Passwords::limited(
            4,
            HashingLimits {
                concurrency: 1,
                queue,
            },
        )
    }

    fn busy() -> Error {
        Error::PasswordChecksBusy {
            retry_after_secs: BUSY_RETRY_AFTER_SECS,
        }
    }

    #[tokio::test]
    async fn with_every_slot_busy_past_the_queue_deadline_nothing_is_hashed() {
        let p = one_slot(Duration::from_millis(20));
        let pw = Password::parse("correct horse".into()).unwrap();
        let hash = p.hash(&pw).await.unwrap();
        let held = p.slots.clone().try_acquire_owned().unwrap();
        let refused = p.verify(&pw, Some(&hash)).await.unwrap_err();
        assert_eq!(refused.to_string(), busy().to_string());
        assert_eq!(
            refused.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(matches!(
            p.hash(&pw).await,
            Err(Error::PasswordChecksBusy {
                retry_after_secs: 1
            })
        ));
        drop(held);
        assert!(
            p.verify(&pw, Some(&hash)).await.unwrap(),
            "a free slot again"
        );
    }

    #[tokio::test]
    async fn a_slot_freed_within_the_queue_deadline_is_taken() {
        let p = one_slot(Duration::from_secs(30));
        let pw = Password::parse("correct horse".into()).unwrap();
        let held = p.slots.clone().try_acquire_owned().unwrap();
        let waiting = tokio::spawn({
            let p = p.clone();
            let pw = pw.clone();
            async move { p.hash(&pw).await }
        });
        tokio::task::yield_now().await;
        drop(held);
        let hash = waiting.await.unwrap().unwrap();
        assert!(p.verify(&pw, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn the_dummy_hash_is_checked_at_full_cost_and_never_matches() {
        let p = Passwords::new(10);
        let pw = Password::parse("anything-at-all".into()).unwrap();
        let real = p.hash(&pw).await.unwrap();
        let start = Instant::now();
        assert!(!p.verify(&pw, None).await.unwrap());
        let dummy_time = start.elapsed();
        let start = Instant::now();
        assert!(p.verify(&pw, Some(&real)).await.unwrap());
        let real_time = start.elapsed();
        assert!(
            dummy_time * 4 > real_time,
            "dummy {dummy_time:?} vs real {real_time:?}"
        );
        for _ in 0..200 {
            assert_eq!(bcrypt::verify("x", &dummy_hash(4)).ok(), Some(false));
        }
    }

    #[tokio::test]
    async fn a_hash_of_another_cost_needs_rehashing_and_the_dummy_never_does() {
        let pw = Password::parse("anything-at-all".into()).unwrap();
        let old = Passwords::new(4).hash(&pw).await.unwrap();
        for cost in [4, 5, 10, 12] {
            let p = Passwords::new(cost);
            assert_eq!(p.needs_rehash(&old), cost != 4, "cost {cost}");
            assert!(
                !p.needs_rehash(&p.dummy_hash),
                "the dummy is at the cost, {cost}"
            );
        }
        let current = Passwords::new(5).hash(&pw).await.unwrap();
        assert!(!Passwords::new(5).needs_rehash(&current));
        assert!(!Passwords::new(5).needs_rehash("not a bcrypt hash"));
    }
}
