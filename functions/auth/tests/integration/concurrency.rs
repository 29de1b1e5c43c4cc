//! Registration is one atomic step: racing registrations of one name have one winner.

use axum::http::StatusCode;

use testkit::*;

use crate::support::*;

const PASSWORD: &str = "securePassword123";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_registrations_of_one_username_have_exactly_one_winner() {
    let results = racing(&app(), 50, |app, i| async move {
        let email = format!("user{i}@example.com");
        register(&app, "contested", &email, PASSWORD).await
    })
    .await;
    let conflicts = with_status(&results, StatusCode::CONFLICT);
    assert_eq!(with_status(&results, StatusCode::OK).len(), 1);
    assert_eq!(conflicts.len(), 49);
    assert!(
        conflicts
            .iter()
            .all(|r| r.body == error(409, "Username already exists"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_registrations_of_one_email_have_exactly_one_winner() {
    let results = racing(&app(), 50, |app, i| async move {
        register(&app, &format!("user{i}"), "Shared@Example.com", PASSWORD).await
    })
    .await;
    assert_eq!(with_status(&results, StatusCode::OK).len(), 1);
    assert_eq!(
        results
            .iter()
            .filter(|r| r.body == error(409, "Email already registered"))
            .count(),
        49
    );
}
