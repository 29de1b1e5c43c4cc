//! The users function behind API Gateway: the repo's HTTP API (v2) event fixtures fed
//! through lambda_http's adapter, one per method, as the Lambda runtime does.

use serde_json::json;

use testkit::*;

use crate::support::*;

#[tokio::test]
async fn health_event_answers_the_health_body() {
    let reply = invoke(app().router, event("users-health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        json!({"status": "ok", "service": "user-service", "message": "User service is running"})
    );
    assert_eq!(reply.headers["content-type"], "application/json");
}

/// Behind API Gateway `/api/users*` reaches users straight: users answers with API
/// Gateway's request id (errors too), or the caller's.
#[tokio::test]
async fn answers_carry_api_gateways_request_id_or_the_callers() {
    let reply = invoke(app().router, event("users-list")).await;
    assert_eq!(reply.status, 401);
    let id = event("users-list")["requestContext"]["requestId"].clone();
    assert_eq!(reply.headers["x-request-id"], id);
    let reply = invoke(
        app().router,
        with_header(event("users-get"), "x-request-id", "caller-8"),
    )
    .await;
    assert_eq!(reply.headers["x-request-id"], "caller-8");
}

/// Asserts that `reply` answers a write of alice's profile with `message`.
fn assert_alices_profile_written(reply: &LambdaReply, message: &str) {
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"user_id": ALICE, "message": message}));
}

#[tokio::test]
async fn create_get_list_update_and_delete_events_work_in_turn() {
    let app = app();
    let bearer = format!("Bearer {}", app.token(ALICE, "alice"));
    let authed = |name: &str| with_header(event(name), "authorization", &bearer);
    let send = async |name: &str| invoke(app.router.clone(), authed(name)).await;

    let created = send("users-create").await;
    assert_alices_profile_written(&created, "Profile created successfully");

    let got = send("users-get").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body["full_name"], "Alice Smith");
    assert_eq!(got.body["bio"], "Software developer passionate about Rust");

    let updated = send("users-update").await;
    assert_alices_profile_written(&updated, "Profile updated successfully");
    let got = send("users-get").await;
    assert_eq!(
        got.body["bio"],
        "Senior software developer specializing in microservices"
    );
    assert_eq!(got.body["full_name"], "Alice Smith");

    let listed = send("users-list").await;
    assert_eq!(listed.status, 200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(listed.body[0]["user_id"], ALICE);

    let deleted = send("users-delete").await;
    assert_alices_profile_written(&deleted, "Profile deleted successfully");
    let gone = send("users-get").await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body, error(404, "User not found"));
}

#[tokio::test]
async fn the_list_event_honours_its_limit_and_answers_the_cursor_header() {
    let app = app();
    for (id, name) in [
        (ALICE, "alice"),
        (BOB, "bob"),
        ("770e8400-e29b-41d4-a716-446655440002", "carol"),
    ] {
        app.create(id, name).await;
    }
    let bearer = format!("Bearer {}", app.token(ALICE, "alice"));
    let reply = invoke(
        app.router.clone(),
        with_header(event("users-list"), "authorization", &bearer),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.as_array().unwrap().len(), 2);
    let cursor = reply.headers[users::NEXT_CURSOR]
        .as_str()
        .unwrap()
        .to_owned();

    let mut next = with_header(event("users-list"), "authorization", &bearer);
    next["rawQueryString"] = json!(format!("limit=2&cursor={cursor}"));
    next["queryStringParameters"] = json!({"limit": "2", "cursor": cursor});
    let reply = invoke(app.router, next).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.as_array().unwrap().len(), 1);
    assert_eq!(reply.body[0]["username"], "carol");
    assert!(reply.headers.get(users::NEXT_CURSOR).is_none());
}

#[tokio::test]
async fn the_fixture_placeholder_token_is_refused() {
    let app = app();
    for name in [
        "users-list",
        "users-create",
        "users-get",
        "users-update",
        "users-delete",
    ] {
        let reply = invoke(app.router.clone(), event(name)).await;
        assert_eq!(reply.status, 401, "{name}");
        assert_eq!(reply.body, error(401, "Invalid or expired token"), "{name}");
    }
}

#[tokio::test]
async fn events_without_authorization_or_with_bad_bodies_are_json_4xx() {
    let app = app();
    let mut anonymous = event("users-get");
    anonymous["headers"]
        .as_object_mut()
        .unwrap()
        .remove("authorization");
    let reply = invoke(app.router.clone(), anonymous).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, error(401, "Missing authorization header"));

    let bearer = format!("Bearer {}", app.token(ALICE, "alice"));
    let long_bio = with_body(
        with_header(event("users-create"), "authorization", &bearer),
        &json!({"user_id": ALICE, "username": "alice", "email": "alice@example.com",
                "full_name": "Alice", "bio": "b".repeat(1001)}),
    );
    let reply = invoke(app.router.clone(), long_bio).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["status"], "400");

    let mut broken = with_header(event("users-update"), "authorization", &bearer);
    broken["body"] = json!("{not json");
    let reply = invoke(app.router, broken).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["status"], "400");
}

#[tokio::test]
async fn dot_segment_events_are_the_unknown_route_404_not_the_health_body() {
    let app = app();
    let bearer = format!("Bearer {}", app.token(ALICE, "alice"));
    for path in [
        "/users/%2E%2E",
        "/api/users/%2e%2e",
        "/api/users/..",
        "/users/.%2e",
        "/users/%2e",
        "/api/users/x/%2e%2e/%2e%2e",
    ] {
        for token in [None, Some(bearer.as_str())] {
            let mut request = event("users-get");
            request["rawPath"] = json!(path);
            request["requestContext"]["http"]["path"] = json!(path);
            let request = match token {
                Some(t) => with_header(request, "authorization", t),
                None => {
                    request["headers"]
                        .as_object_mut()
                        .unwrap()
                        .remove("authorization");
                    request
                }
            };
            let reply = invoke(app.router.clone(), request).await;
            assert_eq!(
                (reply.status, &reply.body),
                (404, &error(404, "Route not found")),
                "{path} with token {}",
                token.is_some()
            );
        }
    }
}
