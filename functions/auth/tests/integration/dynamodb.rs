//! The auth function built from configuration with `STORE=dynamodb`, on a real
//! DynamoDB-compatible server (`DYNAMODB_ENDPOINT`) and on one that is down.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;

use auth::Config;
use settings::Secret;
use testkit::dynamodb::TempTables;
use testkit::*;

fn fast(mut config: Config) -> Config {
    config.tokens.secret = Some(Secret::new(SECRET.into()).unwrap());
    config.bcrypt_cost = 4;
    config
}

#[tokio::test]
async fn with_store_dynamodb_accounts_live_in_the_table() {
    let Some(tables) = TempTables::create().await else {
        return;
    };
    let state = auth::AppState::from_config(&fast(tables.config()))
        .await
        .unwrap();
    let app = auth::router(state);

    let Reply { status, .. } =
        register(&app, "john_doe", "john@example.com", "securePassword123").await;
    assert_eq!(status, StatusCode::OK);
    let Reply { status, body, .. } =
        register(&app, "JOHN_DOE", "other@example.com", "securePassword123").await;
    assert_eq!(
        (status, body),
        (StatusCode::CONFLICT, error(409, "Username already exists"))
    );
    let Reply { status, body, .. } = login(&app, "John_Doe", "securePassword123").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["token"].is_string());
    let Reply { status, body, .. } = login(&app, "john_doe", "wrongPassword1").await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            error(401, "Invalid username or password")
        )
    );

    let stored = tables
        .account_keys_present(&["USERNAME#john_doe".into(), "EMAIL#john@example.com".into()])
        .await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    tables.delete().await;
}

#[tokio::test]
async fn a_store_that_is_down_is_a_503_json_error_without_details() {
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let config = config(&[("STORE", "dynamodb"), ("DYNAMODB_ENDPOINT", &endpoint)]);
    let app = auth::router(auth::AppState::from_config(&fast(config)).await.unwrap());
    let unavailable = error(503, "Service temporarily unavailable");

    let Reply { status, body, .. } =
        register(&app, "john_doe", "john@example.com", "securePassword123").await;
    assert_eq!(
        (status, body),
        (StatusCode::SERVICE_UNAVAILABLE, unavailable.clone())
    );
    let Reply { status, body, .. } = login(&app, "john_doe", "securePassword123").await;
    assert_eq!(
        (status, body),
        (StatusCode::SERVICE_UNAVAILABLE, unavailable)
    );
}

/// Registrations on a DynamoDB where every transaction loses a race to another one:
/// retried five times when nothing bounds the request, and behind API Gateway never
/// past the invocation's deadline (taken from its Lambda context), with a 503 in time.
#[tokio::test]
async fn conflicts_are_retried_only_while_the_invocation_has_time() {
    let (url, transactions) = testkit::dynamodb::always_conflicting().await;
    let config = fast(config(&[
        ("STORE", "dynamodb"),
        ("DYNAMODB_ENDPOINT", &url),
    ]));
    let app = auth::router(auth::AppState::from_config(&config).await.unwrap());
    let unavailable = (503, error(503, "Service temporarily unavailable"));

    let unbounded = invoke(app.clone(), event("auth-register")).await;
    assert_eq!((unbounded.status, unbounded.body), unavailable);
    assert_eq!(transactions.swap(0, Ordering::SeqCst), 5);

    let left = edge::deadline::ANSWER_MARGIN + Duration::from_millis(50);
    let hurried = invoke_due_in(app, event("auth-register"), left).await;
    assert_eq!((hurried.status, hurried.body), unavailable);
    let tried = transactions.load(Ordering::SeqCst);
    assert!(
        tried < 5,
        "{tried} attempts in 50 ms of pauses from 10 ms up"
    );
}
