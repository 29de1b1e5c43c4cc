//! The auth function built from configuration with `STORE=dynamodb`, on a real
//! DynamoDB-compatible server (`DYNAMODB_ENDPOINT`) and on one that is down.

use axum::http::StatusCode;

use shared::config::Secret;
use shared::testing::dynamodb::TempTables;
use shared::testing::*;
use shared::Config;

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
    let state = auth::AppState::from_config(&fast(tables.config.clone()))
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
