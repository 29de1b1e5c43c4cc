//! Registration is one atomic step: racing registrations of one name have one winner.

use axum::http::StatusCode;
use futures::future::join_all;

use testkit::*;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_registrations_of_one_username_have_exactly_one_winner() {
    let app = app();
    let attempts = (0..50).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            register(
                &app,
                "contested",
                &format!("user{i}@example.com"),
                "securePassword123",
            )
            .await
        })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let ok = results
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .count();
    let conflicts: Vec<_> = results
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT)
        .collect();
    assert_eq!(ok, 1);
    assert_eq!(conflicts.len(), 49);
    assert!(
        conflicts
            .iter()
            .all(|r| r.body == error(409, "Username already exists"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_registrations_of_one_email_have_exactly_one_winner() {
    let app = app();
    let attempts = (0..50).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            register(
                &app,
                &format!("user{i}"),
                "Shared@Example.com",
                "securePassword123",
            )
            .await
        })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count(),
        1
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.body == error(409, "Email already registered"))
            .count(),
        49
    );
}
