//! The auth section of the spec, example by example and error row by error row.

use axum::Router;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use testkit::*;
use tokens::Claims;

use crate::support::*;

const PASSWORD: &str = "securePassword123";

/// An auth app in which `john_doe` (john@example.com) has registered with
/// [`PASSWORD`], and the body of the answer to that registration.
async fn with_john_doe() -> (Router, Value) {
    let app = app();
    let registered = register(&app, "john_doe", "john@example.com", PASSWORD).await;
    (app, registered.body)
}

/// `POST /validate` of `token` to `app`.
async fn validate(app: &Router, token: impl Serialize) -> Reply {
    post(app, "/validate", json!({ "token": token })).await
}

#[tokio::test]
async fn health_answers_as_the_spec_shows() {
    let Reply { status, body, .. } = get(&app(), "/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "status": "ok",
            "message": "API is running",
            "endpoints": {
                "health": "/", "register": "/register", "login": "/login", "validate": "/validate",
                "refresh": "/refresh", "logout": "/logout", "sessions": "/sessions",
                "end_session": "/sessions/{id}", "change_password": "/password",
                "delete_account": "/account", "verify_email": "/email/verify",
                "resend_verification": "/email/verify/resend",
                "forgot_password": "/password/forgot", "reset_password": "/password/reset",
                "change_email": "/email", "confirm_email": "/email/confirm",
                "jwks": "/.well-known/jwks.json",
                "discovery": "/.well-known/openid-configuration"
            }
        })
    );
}

#[tokio::test]
async fn register_answers_with_a_new_user_id() {
    let Reply { status, body, .. } =
        register(&app(), "john_doe", "john@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["username"], "john_doe");
    assert_eq!(body["message"], "User registered successfully");
    assert!(Uuid::parse_str(body["user_id"].as_str().unwrap()).is_ok());
    assert_eq!(body.as_object().unwrap().len(), 3);
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_whatever_its_case() {
    let (app, _) = with_john_doe().await;
    for name in ["john_doe", "JOHN_DOE", "John_Doe"] {
        assert_eq!(
            register(&app, name, "other@example.com", PASSWORD).await,
            (StatusCode::CONFLICT, error(409, "Username already exists"))
        );
    }
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_whatever_its_case() {
    let (app, _) = with_john_doe().await;
    assert_eq!(
        register(&app, "jane", "John@Example.COM", PASSWORD).await,
        (StatusCode::CONFLICT, error(409, "Email already registered"))
    );
}

#[tokio::test]
async fn username_is_reported_first_when_both_are_taken() {
    let (app, _) = with_john_doe().await;
    let Reply { body, .. } = register(&app, "john_doe", "john@example.com", PASSWORD).await;
    assert_eq!(body, error(409, "Username already exists"));
}

#[tokio::test]
async fn login_gives_a_bearer_token_for_a_day() {
    let (app, registered) = with_john_doe().await;
    let Reply { status, body, .. } = login(&app, "john_doe", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    let claims: Claims = tokens().verify(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims.sub, registered["user_id"].as_str().unwrap());
    assert_eq!(claims.username, "john_doe");
}

#[tokio::test]
async fn login_is_case_insensitive_on_the_username_only() {
    let (app, _) = with_john_doe().await;
    assert_eq!(
        login(&app, "JOHN_DOE", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        login(&app, "john_doe", "SECUREPASSWORD123").await,
        (
            StatusCode::UNAUTHORIZED,
            error(401, "Invalid username or password")
        )
    );
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_get_the_same_answer() {
    let (app, _) = with_john_doe().await;
    let wrong = login(&app, "john_doe", "wrongPassword").await;
    let unknown = login(&app, "nobody_here", PASSWORD).await;
    let malformed = login(&app, "no spaces allowed", PASSWORD).await;
    for answer in [wrong, unknown, malformed] {
        assert_eq!(
            answer,
            (
                StatusCode::UNAUTHORIZED,
                error(401, "Invalid username or password")
            )
        );
    }
}

#[tokio::test]
async fn validate_answers_with_the_token_owner() {
    let (app, registered) = with_john_doe().await;
    let logged_in = login(&app, "john_doe", PASSWORD).await.body;
    assert_eq!(
        validate(&app, &logged_in["token"]).await,
        (
            StatusCode::OK,
            json!({"valid": true, "user_id": registered["user_id"], "username": "john_doe"})
        )
    );
}

#[tokio::test]
async fn a_garbage_token_is_invalid_or_malformed() {
    for token in ["", "abc", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.x"] {
        assert_eq!(
            validate(&app(), token).await,
            (
                StatusCode::UNAUTHORIZED,
                error(401, "Invalid or malformed token")
            )
        );
    }
}

#[tokio::test]
async fn an_expired_token_says_so() {
    let tokens = tokens();
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: Uuid::new_v4().to_string(),
        username: "john_doe".into(),
        iat: now - 7200,
        exp: now - 3600,
        jti: Uuid::new_v4().to_string(),
        sid: Uuid::new_v4().to_string(),
        iss: tokens::DEFAULT_ISSUER.into(),
        aud: tokens::DEFAULT_AUDIENCE.into(),
        email_verified: false,
    };
    let token = tokens.sign(&claims).unwrap();
    assert_eq!(
        validate(&app(), token).await,
        (StatusCode::UNAUTHORIZED, error(401, "Token has expired"))
    );
}

#[tokio::test]
async fn every_route_is_also_served_under_api() {
    let app = app();
    assert_eq!(get(&app, "/api").await.status, StatusCode::OK);
    let Reply { status, .. } = register(&app, "john_doe", "john@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let Reply { status, body, .. } = post(
        &app,
        "/api/login",
        json!({"username": "john_doe", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let Reply { status, .. } = post(&app, "/api/validate", json!({"token": body["token"]})).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_json_errors() {
    let app = app();
    assert_eq!(
        get(&app, "/nope").await,
        (StatusCode::NOT_FOUND, error(404, "Route not found"))
    );
    assert_eq!(
        get(&app, "/api/nope").await,
        (StatusCode::NOT_FOUND, error(404, "Route not found"))
    );
    for path in ["/login", "/api/register", "/validate"] {
        assert_eq!(
            get(&app, path).await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                error(405, "Method not allowed")
            )
        );
    }
}

#[tokio::test]
async fn the_router_serves_exactly_its_listed_routes() {
    let wrong = testkit::route_mismatches(app(), auth::ROUTES).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `GET /.well-known/openid-configuration` on `app`, with `headers` a client chose.
async fn discovery_with(app: &axum::Router, headers: &[(&str, &str)]) -> Reply {
    let mut request = axum::http::Request::get("/.well-known/openid-configuration");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(axum::body::Body::empty()).unwrap()).await
}

/// Headers a client might send to point the cached document at its own key set.
const FORGED: [(&str, &str); 3] = [
    ("host", "attacker.example"),
    ("x-forwarded-host", "attacker.example"),
    ("x-forwarded-proto", "https"),
];

#[tokio::test]
async fn the_discovery_document_points_at_the_public_url_whatever_the_client_sends() {
    let app = auth::router(state_with(&config(&[(
        "PUBLIC_URL",
        "https://api.example.com/",
    )])));
    for headers in [&[][..], &FORGED[..]] {
        let Reply {
            status,
            headers: answer,
            body,
        } = discovery_with(&app, headers).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"issuer": "serverless-auth",
                   "jwks_uri": "https://api.example.com/.well-known/jwks.json"}),
            "{headers:?}"
        );
        assert_eq!(answer["cache-control"], "public, max-age=300");
    }
}

#[tokio::test]
async fn an_issuer_that_is_a_url_is_where_the_key_set_is() {
    let tokens = std::sync::Arc::new(
        tokens::Tokens::new(
            &settings::Secret::new(SECRET.into()).unwrap(),
            std::time::Duration::from_secs(3600),
        )
        .unwrap()
        .with_issuer("https://auth.example.com/", "serverless-auth-api"),
    );
    let config = config(&[("PUBLIC_URL", "https://api.example.com")]);
    let app = auth::router(auth::AppState::new(
        &stores::Stores::memory(),
        tokens,
        &config,
    ));
    let Reply { status, body, .. } = discovery_with(&app, &FORGED).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["jwks_uri"],
        "https://auth.example.com/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn without_a_configured_address_the_discovery_document_is_never_built_from_headers() {
    let Reply { status, body, .. } = discovery_with(&app(), &FORGED).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, error(500, "Internal server error"));
}
