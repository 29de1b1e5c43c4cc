//! A transaction that loses a race to another one is tried again: at most
//! [`CONFLICT_ATTEMPTS`] times, after jittered pauses, and never past the time the
//! request must be answered by ([`edge::deadline`], in Lambda the invocation's deadline
//! less a margin): then the store answers [`Error::Unavailable`] (503) while there is
//! still time to say so.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::TransactWriteItem;
use rand::Rng;

use super::error::Cancelled;
use errors::Error;

/// How many times a write is tried when it keeps colliding with other transactions.
pub(super) const CONFLICT_ATTEMPTS: u32 = 5;

/// The attempts of one store call.
pub(super) struct Retry {
    /// The attempt under way, from 1.
    attempt: u32,
    answer_by: Option<Instant>,
}

impl Retry {
    /// The first attempt, due by the current request's answer-by time.
    pub(super) fn new() -> Self {
        Self::due_by(edge::deadline::answer_by())
    }

    fn due_by(answer_by: Option<Instant>) -> Self {
        Self {
            attempt: 1,
            answer_by,
        }
    }

    /// Runs `call` (one attempt's request), cut short as [`Error::Unavailable`] at the
    /// answer-by time.
    pub(super) async fn bounded<F: Future>(&self, what: &str, call: F) -> Result<F::Output, Error> {
        let Some(at) = self.answer_by else {
            return Ok(call.await);
        };
        tokio::time::timeout_at(at.into(), call).await.map_err(|_| {
            Error::unavailable(format!(
                "DynamoDB {what}: no time left before the function's deadline"
            ))
        })
    }

    /// After an attempt lost a race (`cause`): pauses before the next one, or gives up
    /// with [`Error::Unavailable`] when the attempts are spent or the pause would reach
    /// the answer-by time.
    pub(super) async fn again(&mut self, cause: String) -> Result<(), Error> {
        let pause = pause(self.attempt);
        if !self.allows(pause, Instant::now()) {
            return Err(Error::Unavailable(cause));
        }
        tokio::time::sleep(pause).await;
        self.attempt += 1;
        Ok(())
    }

    /// After an attempt lost to a write that lets the next one succeed without waiting
    /// (a concurrent refresh retired the token, so a read again reissues): the next
    /// attempt at once, within the same bounds.
    pub(super) fn again_at_once(&mut self, cause: String) -> Result<(), Error> {
        if !self.allows(Duration::ZERO, Instant::now()) {
            return Err(Error::Unavailable(cause));
        }
        self.attempt += 1;
        Ok(())
    }

    /// Whether another attempt may follow a pause of `pause` from `now`.
    fn allows(&self, pause: Duration, now: Instant) -> bool {
        self.attempt < CONFLICT_ATTEMPTS && self.answer_by.is_none_or(|at| now + pause < at)
    }
}

/// Sends `items` as one `TransactWriteItems` (`what` names it in errors), again after
/// each race it loses to another transaction, as [`Retry`] allows: `None` when it
/// committed, the cancellation reasons when a condition of its items failed (nothing
/// written).
pub(super) async fn transact_with_retry(
    client: &Client,
    what: &str,
    items: Vec<TransactWriteItem>,
) -> Result<Option<Cancelled>, Error> {
    let mut retry = Retry::new();
    let call_name = format!("TransactWriteItems ({what})");
    loop {
        let call = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send();
        let Err(err) = retry.bounded(&call_name, call).await? else {
            return Ok(None);
        };
        let cancelled = Cancelled::of(err)?;
        if (0..items.len()).any(|i| cancelled.failed(i)) {
            return Ok(Some(cancelled));
        }
        retry.again(cancelled.otherwise(what)?).await?;
    }
}

/// The jittered pause after attempt number `attempt`: 10–20 ms after the first, doubling.
pub(super) fn pause(attempt: u32) -> Duration {
    let base = 10u64 << attempt;
    Duration::from_millis(rand::rng().random_range(base / 2..=base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_deadline_a_call_makes_five_attempts() {
        let mut retry = Retry::due_by(None);
        let now = Instant::now();
        let mut attempts = 1;
        while retry.allows(pause(retry.attempt), now) {
            retry.attempt += 1;
            attempts += 1;
        }
        assert_eq!(attempts, CONFLICT_ATTEMPTS);
    }

    #[test]
    fn no_attempt_follows_a_pause_that_would_reach_the_deadline() {
        let now = Instant::now();
        let retry = Retry::due_by(Some(now + Duration::from_millis(100)));
        assert!(retry.allows(Duration::from_millis(20), now));
        assert!(!retry.allows(Duration::from_millis(100), now));
        assert!(!retry.allows(Duration::from_millis(20), now + Duration::from_millis(90)));
        let past = Retry::due_by(Some(now));
        assert!(!past.allows(Duration::ZERO, now));
    }

    #[test]
    fn pauses_double_with_jitter() {
        for attempt in 1..CONFLICT_ATTEMPTS {
            let base = 10u64 << attempt;
            for _ in 0..20 {
                let ms = pause(attempt).as_millis() as u64;
                assert!((base / 2..=base).contains(&ms), "{attempt}: {ms}");
            }
        }
    }

    #[tokio::test]
    async fn an_attempt_is_cut_at_the_deadline() {
        let retry = Retry::due_by(Some(Instant::now() + Duration::from_millis(20)));
        let cut = retry
            .bounded("test", std::future::pending::<()>())
            .await
            .expect_err("cut");
        assert!(matches!(cut, Error::Unavailable(_)), "{cut:?}");
        let free = Retry::due_by(None);
        assert_eq!(free.bounded("test", async { 7 }).await.unwrap(), 7);
    }
}
