//! The auth function behind API Gateway: the repo's HTTP API (v2) event fixtures fed
//! through lambda_http's adapter, as the Lambda runtime does.

use axum::Router;
use serde_json::{Value, json};

use testkit::*;

use crate::support::*;

/// The fixture event `name` with `body` instead of its own, through `app`.
async fn invoke_with_body(app: &Router, name: &str, body: Value) -> LambdaReply {
    invoke(app.clone(), with_body(event(name), &body)).await
}

/// The fixture event `name` with `body`, from the client address `source_ip` as API
/// Gateway names it.
fn from_source_ip(name: &str, body: Value, source_ip: &str) -> Value {
    let mut event = with_body(event(name), &body);
    event["requestContext"]["http"]["sourceIp"] = json!(source_ip);
    event
}

#[tokio::test]
async fn health_event_answers_the_health_body() {
    let reply = invoke(app(), event("auth-health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["message"], "API is running");
    assert_eq!(reply.headers["content-type"], "application/json");
}

/// Behind API Gateway `/api/*` reaches auth straight, with no gateway function to add
/// the id: auth answers with API Gateway's request id, or the caller's.
#[tokio::test]
async fn answers_carry_api_gateways_request_id_or_the_callers() {
    let reply = invoke(app(), event("auth-health")).await;
    assert_eq!(reply.headers["x-request-id"], "REQ-auth-health");
    let broken = with_body(event("auth-login"), &json!("{not json"));
    let reply = invoke(app(), with_header(broken, "x-request-id", "caller-7")).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.headers["x-request-id"], "caller-7");
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

    let validate =
        invoke_with_body(&app, "auth-validate", json!({"token": login.body["token"]})).await;
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

#[tokio::test]
async fn login_refresh_and_logout_events_work_end_to_end() {
    let app = app();
    assert_eq!(
        invoke(app.clone(), event("auth-register")).await.status,
        200
    );
    let login = invoke(app.clone(), event("auth-login")).await;
    assert_eq!(login.status, 200, "{:?}", login.body);

    let refresh_token = json!({"refresh_token": login.body["refresh_token"]});
    let refreshed = invoke_with_body(&app, "auth-refresh", refresh_token).await;
    assert_eq!(refreshed.status, 200, "{:?}", refreshed.body);
    assert_eq!(refreshed.body["token_type"], "Bearer");

    let bearer = format!("Bearer {}", refreshed.body["token"].as_str().unwrap());
    let logout = invoke(
        app.clone(),
        with_header(
            with_body(
                event("auth-logout"),
                &json!({"refresh_token": refreshed.body["refresh_token"]}),
            ),
            "authorization",
            &bearer,
        ),
    )
    .await;
    assert_eq!(logout.status, 200, "{:?}", logout.body);
    assert_eq!(logout.body, json!({"message": "Logged out successfully"}));

    let validate = invoke_with_body(
        &app,
        "auth-validate",
        json!({"token": refreshed.body["token"]}),
    )
    .await;
    assert_eq!(
        (validate.status, validate.body),
        (401, error(401, "Token has been revoked"))
    );
    let refresh_token = json!({"refresh_token": refreshed.body["refresh_token"]});
    let again = invoke_with_body(&app, "auth-refresh", refresh_token).await;
    assert_eq!(
        (again.status, again.body),
        (401, error(401, "Invalid or expired refresh token"))
    );

    let fixture = invoke(app.clone(), event("auth-refresh")).await;
    assert_eq!(fixture.status, 401);
    let fixture = invoke(app, event("auth-logout")).await;
    assert_eq!(
        (fixture.status, fixture.body),
        (401, error(401, "Invalid or malformed token"))
    );
}

#[tokio::test]
async fn api_gateways_source_ip_is_the_address_failures_count_against() {
    let app = auth::router(state_with(&config(&[("LOGIN_MAX_FAILURES_PER_IP", "2")])));
    let attempt = |name: &str, source_ip: &str| {
        let body = json!({"username": name, "password": "wrong-password"});
        from_source_ip("auth-login", body, source_ip)
    };
    for name in ["anna", "bert"] {
        let reply = invoke(app.clone(), attempt(name, "203.0.113.7")).await;
        assert_eq!(reply.status, 401, "{name}");
    }
    let locked = invoke(app.clone(), attempt("carl", "203.0.113.7")).await;
    assert_eq!(
        (locked.status, &locked.body),
        (
            429,
            &error(429, "Too many failed login attempts, try again later")
        )
    );
    let wait: u64 = locked.headers["retry-after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait));
    let elsewhere = invoke(app, attempt("carl", "198.51.100.1")).await;
    assert_eq!(
        elsewhere.status, 401,
        "another source address is not locked"
    );
}

#[tokio::test]
async fn api_gateways_source_ip_is_the_address_registrations_count_against() {
    let app = auth::router(state_with(&config(&[("REGISTER_MAX_PER_IP", "2")])));
    let registration = |name: &str, source_ip: &str| {
        let email = format!("{name}@example.com");
        let body = json!({"username": name, "email": email, "password": "securePassword123"});
        from_source_ip("auth-register", body, source_ip)
    };
    for name in ["anna", "bert"] {
        let reply = invoke(app.clone(), registration(name, "203.0.113.7")).await;
        assert_eq!(reply.status, 200, "{name}: {:?}", reply.body);
    }
    let limited = invoke(app.clone(), registration("carl", "203.0.113.7")).await;
    assert_eq!(
        (limited.status, &limited.body),
        (
            429,
            &error(
                429,
                "Too many registrations from this address, try again later"
            )
        )
    );
    let wait: u64 = limited.headers["retry-after"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3590..=3600).contains(&wait), "Retry-After {wait}");
    let elsewhere = invoke(app, registration("carl", "198.51.100.1")).await;
    assert_eq!(
        elsewhere.status, 200,
        "another source address is not limited"
    );
}

#[tokio::test]
async fn dot_segment_events_are_the_unknown_route_404_not_the_health_body() {
    for path in [
        "/register/%2E%2E",
        "/api/login/..",
        "/api/%2e%2e/api/validate",
        "/validate/%2e",
    ] {
        let mut request = event("auth-login");
        request["rawPath"] = json!(path);
        request["requestContext"]["http"]["path"] = json!(path);
        let reply = invoke(app(), request).await;
        assert_eq!(
            (reply.status, &reply.body),
            (404, &error(404, "Route not found")),
            "{path}"
        );
    }
}

/// The discovery event behind API Gateway, on `domain`, with forged `Host` and
/// `X-Forwarded-Host` headers.
fn discovery_event(domain: &str) -> serde_json::Value {
    let mut event = event("auth-health");
    event["rawPath"] = json!("/.well-known/openid-configuration");
    event["requestContext"]["http"]["path"] = json!("/.well-known/openid-configuration");
    event["requestContext"]["domainName"] = json!(domain);
    let event = with_header(event, "host", "attacker.example");
    with_header(event, "x-forwarded-host", "attacker.example")
}

#[tokio::test]
async fn behind_api_gateway_the_key_set_is_on_the_domain_api_gateway_names() {
    let reply = invoke(
        app(),
        discovery_event("abcdef1234.execute-api.eu-west-1.amazonaws.com"),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.body["jwks_uri"],
        "https://abcdef1234.execute-api.eu-west-1.amazonaws.com/.well-known/jwks.json"
    );
    let reply = invoke(app(), discovery_event("127.0.0.1:3002")).await;
    assert_eq!(
        reply.body["jwks_uri"], "http://127.0.0.1:3002/.well-known/jwks.json",
        "an emulated API Gateway on loopback serves plain HTTP"
    );
    let configured = auth::router(state_with(&config(&[(
        "PUBLIC_URL",
        "https://auth.example.com",
    )])));
    let reply = invoke(
        configured,
        discovery_event("abcdef1234.execute-api.eu-west-1.amazonaws.com"),
    )
    .await;
    assert_eq!(
        reply.body["jwks_uri"], "https://auth.example.com/.well-known/jwks.json",
        "PUBLIC_URL first: a custom domain"
    );
}
