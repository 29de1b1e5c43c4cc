//! What the auth tests share beyond `testkit`: an auth app over fresh
//! in-memory stores, and requests raced against it.

use std::future::Future;

use axum::Router;
use axum::http::StatusCode;
use futures::future::join_all;

use auth::Config;
use stores::Stores;
use testkit::{Reply, config, tokens};

/// An auth state over fresh in-memory stores, configured by `config`.
pub fn state_with(config: &Config) -> auth::AppState {
    auth::AppState::new(&Stores::memory(), tokens(), config)
}

/// An auth router over fresh in-memory stores, hashing at bcrypt's lowest cost.
pub fn app() -> Router {
    auth::router(state_with(&config(&[])))
}

/// `attempt(app, i)` for each `i` in `0..n`, all at once, each in a task of its own
/// (so they race on every worker thread); the replies in the order of `i`.
pub async fn racing<Attempt>(
    app: &Router,
    n: usize,
    attempt: impl Fn(Router, usize) -> Attempt,
) -> Vec<Reply>
where
    Attempt: Future<Output = Reply> + Send + 'static,
{
    let tasks = (0..n).map(|i| tokio::spawn(attempt(app.clone(), i)));
    join_all(tasks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// The `replies` answered with `status`.
pub fn with_status(replies: &[Reply], status: StatusCode) -> Vec<&Reply> {
    replies.iter().filter(|r| r.status == status).collect()
}
