//! The users function end to end over real HTTP: the local stack on free ports,
//! tokens from its auth, and users in both auth modes.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use local::Config;
use local::Stack;
use testkit::error;
use testkit::http::sign_up;

use crate::support::config_with_secret;

struct Api {
    http: Client,
    stack: Stack,
}

struct User {
    id: String,
    token: String,
}

impl Api {
    async fn start(extra: &[(&str, &str)]) -> Self {
        let stack = local::start(&config_with_secret(extra), local::Ports::ANY)
            .await
            .unwrap();
        Self {
            http: Client::new(),
            stack,
        }
    }

    /// Registers and logs in `name` at auth.
    async fn user(&self, name: &str) -> User {
        let (id, token) = sign_up(&self.stack.auth_url(), name).await;
        User { id, token }
    }

    async fn users(
        &self,
        method: reqwest::Method,
        path: &str,
        user: &User,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        send(
            &self.http,
            &self.stack.users_url(),
            method,
            path,
            &user.token,
            body,
        )
        .await
    }

    async fn create_profile(&self, user: &User, name: &str) {
        let (status, _, body) = self
            .users(
                reqwest::Method::POST,
                "/users",
                user,
                Some(json!({
                    "user_id": user.id,
                    "username": name,
                    "email": format!("{name}@example.com"),
                    "full_name": format!("{name} Smith"),
                    "bio": "Software developer"
                })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"user_id": user.id, "message": "Profile created successfully"})
        );
    }
}

async fn send(
    http: &Client,
    base: &str,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn a_profile_lives_and_dies_with_its_owner_only() {
    use reqwest::Method;
    let api = Api::start(&[]).await;
    let alice = api.user("alice").await;
    let bob = api.user("bob").await;

    let health: Value = api
        .http
        .get(api.stack.users_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health,
        json!({"status": "ok", "service": "user-service", "message": "User service is running"})
    );

    api.create_profile(&alice, "alice").await;
    let one = format!("/users/{}", alice.id);
    let (status, _, profile) = api.users(Method::GET, &one, &bob, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(profile["user_id"], alice.id.as_str());
    assert_eq!(profile["username"], "alice");
    assert_eq!(profile["email"], "alice@example.com");
    assert!(profile["created_at"].as_str().unwrap().ends_with('Z'));

    let (status, _, list) = api.users(Method::GET, "/users", &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([profile]));

    let (status, _, body) = api
        .users(
            Method::PUT,
            &one,
            &alice,
            Some(json!({"bio": "Senior developer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"user_id": alice.id, "message": "Profile updated successfully"})
    );
    let (_, _, updated) = api
        .users(Method::GET, &format!("/api{one}"), &alice, None)
        .await;
    assert_eq!(updated["bio"], "Senior developer");
    assert_eq!(updated["full_name"], "alice Smith");

    for (method, body) in [
        (Method::PUT, Some(json!({"bio": "pwned"}))),
        (Method::DELETE, None),
    ] {
        let (status, _, body) = api.users(method, &one, &bob, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, error(403, "You can only modify your own profile"));
    }
    let (_, _, still) = api.users(Method::GET, &one, &alice, None).await;
    assert_eq!(still, updated);

    let (status, _, body) = api.users(Method::DELETE, &one, &alice, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"user_id": alice.id, "message": "Profile deleted successfully"})
    );
    let (status, _, body) = api.users(Method::GET, &one, &alice, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, error(404, "User not found"));
    api.stack.stop().await;
}

#[tokio::test]
async fn listing_pages_over_http_cover_every_profile_once() {
    let api = Api::start(&[]).await;
    let mut expected = Vec::new();
    let mut users = Vec::new();
    for i in 0..8 {
        let name = format!("user{i}");
        let user = api.user(&name).await;
        api.create_profile(&user, &name).await;
        expected.push(user.id.clone());
        users.push(user);
    }
    expected.sort();
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users?limit=3&cursor={c}"),
            None => "/users?limit=3".to_owned(),
        };
        let (status, headers, body) = api
            .users(
                reqwest::Method::GET,
                &path,
                &users[pages % users.len()],
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        seen.extend(
            body.as_array()
                .unwrap()
                .iter()
                .map(|p| p["user_id"].as_str().unwrap().to_owned()),
        );
        match headers.get("x-next-cursor") {
            Some(next) => cursor = Some(next.to_str().unwrap().to_owned()),
            None => break,
        }
        assert!(pages <= 10, "the walk never ends");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "every profile once, in user_id order");
}

#[tokio::test]
async fn bad_input_over_http_is_400_json() {
    let api = Api::start(&[]).await;
    let alice = api.user("alice").await;
    api.create_profile(&alice, "alice").await;
    let base = api.stack.users_url();
    let one = format!("{base}/users/{}", alice.id);
    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "bad JSON",
            api.http
                .post(format!("{base}/users"))
                .header("content-type", "application/json")
                .body("{\"user_id\": "),
        ),
        (
            "full_name too long",
            api.http
                .put(&one)
                .json(&json!({"full_name": "x".repeat(101)})),
        ),
        (
            "bio too long",
            api.http.put(&one).json(&json!({"bio": "b".repeat(1001)})),
        ),
        (
            "bad email",
            api.http.post(format!("{base}/users")).json(&json!({
                "user_id": alice.id, "username": "alice", "email": "nope",
                "full_name": "A", "bio": "B"
            })),
        ),
        (
            "bad UUID path",
            api.http.get(format!("{base}/users/not-a-uuid")),
        ),
        (
            "bad UUID path on delete",
            api.http.delete(format!("{base}/api/users/42")),
        ),
        (
            "bad cursor",
            api.http.get(format!("{base}/users?cursor=nope")),
        ),
        ("limit=0", api.http.get(format!("{base}/users?limit=0"))),
        (
            "limit=5000",
            api.http.get(format!("{base}/users?limit=5000")),
        ),
        ("limit=abc", api.http.get(format!("{base}/users?limit=abc"))),
    ];
    for (what, request) in cases {
        let response = request.bearer_auth(&alice.token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{what}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["status"], "400", "{what}");
    }
    let (_, _, kept) = api
        .users(
            reqwest::Method::GET,
            &format!("/users/{}", alice.id),
            &alice,
            None,
        )
        .await;
    assert_eq!(kept["bio"], "Software developer");
}

#[tokio::test]
async fn remote_mode_asks_the_stacks_own_auth() {
    let api = Api::start(&[("AUTH_MODE", "remote")]).await;
    let alice = api.user("alice").await;
    api.create_profile(&alice, "alice").await;
    let (status, _, list) = api
        .users(reqwest::Method::GET, "/users", &alice, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["user_id"], alice.id.as_str());
    let forged = User {
        id: alice.id.clone(),
        token: format!("{}x", alice.token),
    };
    let (status, _, body) = api
        .users(reqwest::Method::GET, "/users", &forged, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, error(401, "Invalid or expired token"));
}

/// A users function built from `config` alone, as its Lambda binary would be, served
/// on a free port.
async fn users_from_config(config: &Config) -> String {
    let state = users::AppState::from_config(&config.users).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, users::router(state)).await.unwrap();
    });
    format!("http://{addr}")
}

/// A users function in remote auth mode asking auth at `auth`, with `extra`
/// settings, as [`users_from_config`] serves it.
async fn remote_users(auth: &str, extra: &[(&str, &str)]) -> String {
    let remote = [("AUTH_MODE", "remote"), ("AUTH_SERVICE_URL", auth)];
    users_from_config(&config_with_secret(&[&remote, extra].concat())).await
}

async fn token_from_a_stack() -> (Stack, String) {
    let api = Api::start(&[]).await;
    let user = api.user("carol").await;
    (api.stack, user.token)
}

/// `GET /users` at the users function at `base` with `token`: status and body.
async fn list(base: &str, token: &str) -> (StatusCode, Value) {
    let (status, _, body) = send(
        &Client::new(),
        base,
        reqwest::Method::GET,
        "/users",
        token,
        None,
    )
    .await;
    (status, body)
}

/// Lists the users at `base` with a token of a stack of its own, asserts that auth
/// was unavailable (503) and returns how long the answer took.
async fn unavailable_auth(base: &str) -> Duration {
    let (_stack, token) = token_from_a_stack().await;
    let start = Instant::now();
    let (status, body) = list(base, &token).await;
    let elapsed = start.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, error(503, "Auth service unavailable"));
    elapsed
}

#[tokio::test]
async fn remote_mode_with_auth_on_a_dead_port_is_503_within_the_timeout() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let timeouts = [("CONNECT_TIMEOUT_MS", "300"), ("REQUEST_TIMEOUT_MS", "600")];
    let base = remote_users(&format!("http://{dead}"), &timeouts).await;
    let elapsed = unavailable_auth(&base).await;
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn remote_mode_with_a_silent_auth_is_503_after_the_request_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let base = remote_users(&url, &[("REQUEST_TIMEOUT_MS", "400")]).await;
    let elapsed = unavailable_auth(&base).await;
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(silent);
}

#[tokio::test]
async fn remote_mode_against_a_running_auth_on_a_free_port_works() {
    let (stack, token) = token_from_a_stack().await;
    let base = remote_users(&stack.auth_url(), &[]).await;
    let (status, body) = list(&base, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!([]));
    let (status, body) = list(&base, "not-a-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body, error(401, "Invalid or expired token"));
}
