//! The time by which the current request must be answered: in Lambda, the invocation's
//! deadline less [`ANSWER_MARGIN`]; none elsewhere. The router's edge
//! ([`crate::http::finish`]) sets it for each request from the Lambda context that
//! lambda_http puts in the request's extensions, through a task-local, and work that
//! would try again (the DynamoDB stores' transactions) reads it there, so handlers pass
//! nothing along.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What is kept back from the invocation's deadline to write the answer and hand it to
/// the Lambda runtime.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

tokio::task_local! {
    static ANSWER_BY: Instant;
}

/// Runs `work` (a request) with `answer_by` as the time it must be answered by; with
/// `None`, without one.
pub async fn within<F: Future>(answer_by: Option<Instant>, work: F) -> F::Output {
    match answer_by {
        Some(at) => ANSWER_BY.scope(at, work).await,
        None => work.await,
    }
}

/// The time the request the current task serves must be answered by, if it has one.
pub fn answer_by() -> Option<Instant> {
    ANSWER_BY.try_with(|at| *at).ok()
}

/// The answer-by time of a Lambda invocation whose deadline is `deadline_ms` (epoch
/// milliseconds, the Runtime API's `Lambda-Runtime-Deadline-Ms`), on the monotonic
/// clock, given the wall clock and the monotonic clock read together (`now`). A
/// deadline of 0 is none given (a default context, as in tests): `None`.
pub fn of_invocation(deadline_ms: u64, now: (SystemTime, Instant)) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    let left = deadline.duration_since(now.0).unwrap_or(Duration::ZERO);
    Some(now.1 + left.saturating_sub(ANSWER_MARGIN))
}

/// The answer-by time of a request from the Lambda context in its `extensions`; `None`
/// outside Lambda.
pub fn of_request(extensions: &http::Extensions) -> Option<Instant> {
    let context = lambda_http::RequestExt::lambda_context_ref(extensions)?;
    of_invocation(context.deadline, (SystemTime::now(), Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_is_answered_a_margin_before_its_deadline() {
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mono = Instant::now();
        let in_ten_seconds = 1_700_000_010_000;
        assert_eq!(
            of_invocation(in_ten_seconds, (wall, mono)),
            Some(mono + Duration::from_secs(10) - ANSWER_MARGIN)
        );
        assert_eq!(
            of_invocation(1_700_000_000_100, (wall, mono)),
            Some(mono),
            "less time left than the margin: answer at once"
        );
        assert_eq!(
            of_invocation(1_600_000_000_000, (wall, mono)),
            Some(mono),
            "past"
        );
        assert_eq!(of_invocation(0, (wall, mono)), None, "none given");
    }

    #[tokio::test]
    async fn the_answer_by_time_is_seen_inside_its_request_only() {
        let at = Instant::now() + Duration::from_secs(3);
        assert_eq!(answer_by(), None);
        let seen = within(Some(at), async {
            tokio::task::yield_now().await;
            answer_by()
        })
        .await;
        assert_eq!(seen, Some(at));
        assert_eq!(within(None, async { answer_by() }).await, None);
        assert_eq!(answer_by(), None);
    }
}
