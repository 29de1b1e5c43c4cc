//! The auth function behind API Gateway: the repo's HTTP API (v2) event fixtures fed
//! through lambda_http's adapter, as the Lambda runtime does.

mod common;

use serde_json::json;
use shared::testing::{event, invoke, with_body};

use common::*;

#[tokio::test]
async fn health_event_answers_the_health_body() {
    let reply = invoke(app(), event("auth-health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["message"], "API is running");
    assert_eq!(reply.headers["content-type"], "application/json");
}

#[tokio::test]
async fn register_login_and_validate_events_work_end_to_end() {
    let app = app();
    let reply = invoke(app.clone(), event("auth-register")).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body["username"], "alice");
    let user_id = reply.body["user_id"].clone();

    let again = invoke(app.clone(), event("auth-register")).await;
    assert_eq!(again.status, 409);
    assert_eq!(again.body, error(409, "Username already exists"));

    let login = invoke(app.clone(), event("auth-login")).await;
    assert_eq!(login.status, 200);
    assert_eq!(login.body["token_type"], "Bearer");

    let validate = invoke(
        app.clone(),
        with_body(
            event("auth-validate"),
            &json!({"token": login.body["token"]}),
        ),
    )
    .await;
    assert_eq!(validate.status, 200);
    assert_eq!(
        validate.body,
        json!({"valid": true, "user_id": user_id, "username": "alice"})
    );

    let bad = invoke(app, event("auth-validate")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.body, error(401, "Invalid or malformed token"));
}

#[tokio::test]
async fn a_malformed_body_in_an_event_is_a_400_json_error() {
    let mut broken = event("auth-login");
    broken["body"] = json!("{not json");
    let reply = invoke(app(), broken).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["status"], "400");
}

#[tokio::test]
async fn a_base64_encoded_body_is_decoded() {
    use base64::Engine;
    let mut encoded = event("auth-register");
    let body = encoded["body"].as_str().unwrap().to_owned();
    encoded["body"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    encoded["isBase64Encoded"] = json!(true);
    let reply = invoke(app(), encoded).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}
