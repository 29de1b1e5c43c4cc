//! The spec's gateway examples over real HTTP through the local stack's gateway,
//! with the stack's own auth behind it (and its own users, or a stand-in for users).

use local::Stack;
use serde_json::json;
use testkit::error;
use testkit::http::{
    Fake, Reply, call, client, dead_url, log_in, raw_request, raw_request_with, read, send,
    sign_up, spec_health,
};

use crate::support::{on_tables, stack};

const ALICE_ID: &str = "550e8400-e29b-41d4-a716-446655440000";

#[tokio::test]
async fn the_gateway_health_and_auth_examples_answer_as_the_spec_shows() {
    let stack = stack(&[]).await;
    let gw = stack.gateway_url();

    let (status, mut health) = call("GET", format!("{gw}/"), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(health["downstream"]["auth"], "ok");
    health.as_object_mut().unwrap().shift_remove("downstream");
    assert_eq!(
        health.as_object_mut().unwrap().shift_remove("breakers"),
        Some(serde_json::json!({"auth": "closed", "users": "closed"}))
    );
    assert_eq!(health.to_string(), spec_health().to_string());

    let alice = json!({"username": "alice", "email": "alice@example.com",
                       "password": "securePassword123"});
    let (status, headers, registered) = send(
        "POST",
        format!("{gw}/api/register"),
        None,
        Some(alice.clone()),
    )
    .await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("x-request-id"));
    assert_eq!(registered["username"], "alice");
    assert_eq!(registered["message"], "User registered successfully");
    let user_id = registered["user_id"].as_str().unwrap();
    assert!(uuid_like(user_id), "{user_id}");

    let (status, body) = call("POST", format!("{gw}/api/register"), None, Some(alice)).await;
    assert_eq!((status, body), (409, error(409, "Username already exists")));

    let (status, login) = log_in(&format!("{gw}/api"), "alice").await;
    assert_eq!(status, 200);
    assert_eq!(login["token_type"], "Bearer");
    assert_eq!(login["expires_in"], 86400);

    let wrong = Some(json!({"username": "alice", "password": "wrong-password"}));
    let refused = call("POST", format!("{gw}/api/login"), None, wrong).await;
    assert_eq!(refused, (401, error(401, "Invalid username or password")));

    let validate = |token: &serde_json::Value| {
        let body = Some(json!({ "token": token }));
        call("POST", format!("{gw}/api/validate"), None, body)
    };
    let valid = json!({"valid": true, "user_id": user_id, "username": "alice"});
    assert_eq!(validate(&login["token"]).await, (200, valid));
    let malformed = error(401, "Invalid or malformed token");
    assert_eq!(validate(&json!("not.a.token")).await, (401, malformed));
    stack.stop().await;
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn the_users_examples_reach_the_users_service_named_in_the_environment() {
    let users = Fake::start(Reply::json(
        200,
        json!({"user_id": ALICE_ID, "message": "Profile created successfully"}),
    ))
    .await;
    let stack = stack(&[("USER_SERVICE_URL", &users.url)]).await;
    let gw = stack.gateway_url();
    let (_, token) = sign_up(&format!("{gw}/api"), "alice").await;

    let create = json!({"user_id": ALICE_ID, "username": "alice", "email": "alice@example.com",
                        "full_name": "Alice Smith", "bio": "Software developer"});
    let update = json!({"bio": "Senior software developer"});
    let profile_url = format!("{gw}/api/users/{ALICE_ID}");
    let examples = [
        (
            "POST",
            format!("{gw}/api/users"),
            Some(create),
            "/users".to_owned(),
        ),
        (
            "GET",
            profile_url.clone(),
            None,
            format!("/users/{ALICE_ID}"),
        ),
        (
            "PUT",
            profile_url.clone(),
            Some(update),
            format!("/users/{ALICE_ID}"),
        ),
        ("DELETE", profile_url, None, format!("/users/{ALICE_ID}")),
    ];
    for (i, (method, url, body, path)) in examples.into_iter().enumerate() {
        let (status, answer) = call(method, url, Some(&token), body.clone()).await;
        assert_eq!(status, 200, "{method} {path}: {answer}");
        assert_eq!(answer["user_id"], ALICE_ID);
        let got = users.received().remove(i);
        assert_eq!(
            (got.method.as_str(), got.path.as_str()),
            (method, path.as_str())
        );
        let bearer = format!("Bearer {token}");
        assert_eq!(got.header("authorization"), Some(bearer.as_str()));
        assert!(got.header("x-request-id").is_some());
        match body {
            Some(body) => assert_eq!(got.json(), body),
            None => assert!(got.body.is_empty()),
        }
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_dead_auth_service_named_in_the_environment_is_a_503() {
    let dead = dead_url().await;
    let stack = stack(&[("AUTH_SERVICE_URL", &dead)]).await;
    let login = log_in(&format!("{}/api", stack.gateway_url()), "alice").await;
    assert_eq!(login, (503, error(503, "Auth service unavailable")));
    let (status, health) = call("GET", format!("{}/", stack.gateway_url()), None, None).await;
    assert_eq!(
        (status, &health["downstream"]["auth"]),
        (200, &json!("unavailable"))
    );
    stack.stop().await;
}

/// The whole spec flow through the gateway against the real users service:
/// register → login → create profile → get → list → update → delete, and the
/// forwarded 401, 403, 404 and 409.
#[tokio::test]
async fn the_whole_flow_through_the_gateway_matches_the_spec() {
    whole_flow(stack(&[]).await).await;
}

/// The same flow with every store on DynamoDB (a real DynamoDB-compatible server).
#[tokio::test]
async fn the_whole_flow_through_the_gateway_works_on_dynamodb() {
    let Some(tables) = testkit::dynamodb::TempTables::create().await else {
        return;
    };
    let stack = local::start(&on_tables(&tables, &[]), local::Ports::ANY)
        .await
        .unwrap();
    whole_flow(stack).await;
    tables.delete().await;
}

/// Users' answer to a successful write of `user_id`'s profile: `done` is `created`,
/// `updated` or `deleted`.
fn profile_written(user_id: &str, done: &str) -> serde_json::Value {
    json!({"user_id": user_id, "message": format!("Profile {done} successfully")})
}

async fn whole_flow(stack: Stack) {
    let gw = stack.gateway_url();
    let (alice_id, alice) = sign_up(&format!("{gw}/api"), "alice").await;
    let (_, bob) = sign_up(&format!("{gw}/api"), "bob").await;
    let profile_url = format!("{gw}/api/users/{alice_id}");
    let create = json!({"user_id": alice_id, "username": "alice", "email": "alice@example.com",
                        "full_name": "Alice Smith", "bio": "Software developer"});

    let (status, body) = call("GET", format!("{gw}/api/users"), None, None).await;
    assert_eq!(
        (status, body),
        (401, error(401, "Missing authorization header"))
    );
    let (status, body) = call("GET", profile_url.clone(), Some("not.a.token"), None).await;
    assert_eq!(
        (status, body),
        (401, error(401, "Invalid or expired token"))
    );

    let users = format!("{gw}/api/users");
    let created = call("POST", users.clone(), Some(&alice), Some(create.clone())).await;
    assert_eq!(created, (200, profile_written(&alice_id, "created")));
    let again = call("POST", users, Some(&alice), Some(create)).await;
    assert_eq!(again, (409, error(409, "User already exists")));

    let (status, profile) = call("GET", profile_url.clone(), Some(&alice), None).await;
    assert_eq!(status, 200);
    assert_eq!(profile["full_name"], "Alice Smith");
    assert_eq!(profile["bio"], "Software developer");
    assert!(profile["created_at"].is_string());

    let (status, all) = call("GET", format!("{gw}/api/users"), Some(&bob), None).await;
    assert_eq!(status, 200);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|p| p["user_id"] == alice_id.as_str())
    );

    let bio = |bio: &str| Some(json!({ "bio": bio }));
    let hacked = call("PUT", profile_url.clone(), Some(&bob), bio("hacked")).await;
    let forbidden = error(403, "You can only modify your own profile");
    assert_eq!(hacked, (403, forbidden));

    let senior = bio("Senior software developer");
    let updated = call("PUT", profile_url.clone(), Some(&alice), senior).await;
    assert_eq!(updated, (200, profile_written(&alice_id, "updated")));
    let (_, profile) = call("GET", profile_url.clone(), Some(&alice), None).await;
    assert_eq!(profile["bio"], "Senior software developer");

    let deleted = call("DELETE", profile_url.clone(), Some(&alice), None).await;
    assert_eq!(deleted, (200, profile_written(&alice_id, "deleted")));
    let (status, body) = call("GET", profile_url, Some(&alice), None).await;
    assert_eq!((status, body), (404, error(404, "User not found")));
    stack.stop().await;
}

/// The CORS headers the local stack's gateway answers a browser on `origin` with: a
/// preflight for `PUT /api/users/{id}`, then a `GET /api/users` without a token.
async fn cors_answer(gw: &str, origin: &str) -> [Option<String>; 3] {
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{gw}/api/users/{ALICE_ID}"),
        )
        .header("origin", origin)
        .header("access-control-request-method", "PUT")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    let get = client()
        .get(format!("{gw}/api/users"))
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 401);
    let value = |response: &reqwest::Response, name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
    };
    [
        value(&preflight, "access-control-allow-origin"),
        value(&get, "access-control-allow-origin"),
        value(&get, "access-control-expose-headers"),
    ]
}

#[tokio::test]
async fn the_local_stack_lets_any_origin_in_unless_cors_allowed_origins_says_otherwise() {
    const PAGE: &str = "http://localhost:5173";
    for (env, origin, allowed) in [
        (None, PAGE, Some("*")),
        (None, "https://anywhere.example", Some("*")),
        (Some(PAGE), PAGE, Some(PAGE)),
        (Some(PAGE), "https://anywhere.example", None),
        (Some(""), PAGE, None),
    ] {
        let vars: Vec<_> = env
            .map(|v| ("CORS_ALLOWED_ORIGINS", v))
            .into_iter()
            .collect();
        let stack = stack(&vars).await;
        let [preflight, get, exposed] = cors_answer(&stack.gateway_url(), origin).await;
        let case = format!("CORS_ALLOWED_ORIGINS={env:?}, Origin: {origin}");
        assert_eq!(preflight.as_deref(), allowed, "{case}: preflight");
        assert_eq!(get.as_deref(), allowed, "{case}: GET");
        if allowed.is_some() {
            let exposed = exposed.unwrap_or_default();
            for name in ["x-request-id", "x-next-cursor", "retry-after"] {
                assert!(exposed.contains(name), "{case}: {name} not in {exposed}");
            }
        }
        stack.stop().await;
    }
}

#[tokio::test]
async fn an_options_request_that_is_no_preflight_is_the_services_405_with_cors_on_by_default() {
    let stack = stack(&[]).await;
    let response = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/register", stack.gateway_url()),
        )
        .send()
        .await
        .unwrap();
    let (status, _, body) = read(response).await;
    assert_eq!((status, &body["status"]), (405, &json!("405")), "{body}");
    stack.stop().await;
}

#[tokio::test]
async fn dot_segments_reach_no_service_and_never_answer_a_health_body() {
    let stack = stack(&[]).await;
    let gw = stack.gateway_url();
    let (_, token) = sign_up(&format!("{gw}/api"), "dotty").await;
    let paths = [
        "/api/users/%2e%2e",
        "/api/users/%2E%2E",
        "/api/users/.%2e",
        "/api/users/%2e.",
        "/api/users/..",
        "/api/users/.",
        "/api/users/%2e",
        "/users/%2e%2e",
        "/api/users/..\\",
        "/api/users/%2e%2e/register",
        "/api/register/%2e%2e",
    ];
    let bearer = format!("Bearer {token}");
    for base in [gw.clone(), stack.users_url(), stack.auth_url()] {
        for path in paths {
            for headers in [vec![], vec![("authorization", bearer.as_str())]] {
                let (status, body) = raw_request_with(&base, "GET", path, &headers).await;
                assert_eq!(
                    (status, &body),
                    (404, &error(404, "Route not found")),
                    "{base}{path} {headers:?}"
                );
            }
        }
    }
    let (status, body) = raw_request(&gw, "GET", "/api/users/%2e%2e").await;
    assert_eq!(status, 404);
    assert!(body.get("service").is_none(), "{body}");
}
