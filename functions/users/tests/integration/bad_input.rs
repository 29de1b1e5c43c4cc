//! Bad input, table by table: every mistake is a 4xx JSON error, never a 404, 5xx or
//! a change to the data.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use testkit::*;

use crate::support::*;

fn with(overrides: Value) -> Value {
    let mut body = profile_json(ALICE, "alice");
    for (k, v) in overrides.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

#[tokio::test]
async fn bad_create_bodies_are_400_and_create_nothing() {
    let (app, token) = app_and_alice();
    let mut missing_bio = profile_json(ALICE, "alice");
    missing_bio.as_object_mut().unwrap().remove("bio");
    let cases: Vec<(&str, Value)> = vec![
        ("user_id not a UUID", with(json!({"user_id": "123"}))),
        ("user_id empty", with(json!({"user_id": ""}))),
        ("user_id a number", with(json!({"user_id": 42}))),
        ("username too short", with(json!({"username": "al"}))),
        ("username with a space", with(json!({"username": "al ice"}))),
        ("email invalid", with(json!({"email": "alice"}))),
        (
            "email without domain dot",
            with(json!({"email": "alice@localhost"})),
        ),
        (
            "full_name 101 chars",
            with(json!({"full_name": "x".repeat(101)})),
        ),
        (
            "full_name 101 wide chars",
            with(json!({"full_name": "é".repeat(101)})),
        ),
        ("bio 1001 chars", with(json!({"bio": "b".repeat(1001)}))),
        (
            "1,100 control characters",
            with(json!({"bio": "\u{1}".repeat(1000), "full_name": "\u{1}".repeat(100)})),
        ),
        ("bio not a string", with(json!({"bio": ["b"]}))),
        ("bio missing", missing_bio),
        (
            "unknown field",
            with(json!({"created_at": "2024-01-15T10:30:00Z"})),
        ),
        ("empty object", json!({})),
        ("array", json!([profile_json(ALICE, "alice")])),
        ("string", json!("alice")),
        ("null", Value::Null),
    ];
    for (what, body) in cases {
        let reply = app.post("/users", &token, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["status"], "400", "{what}");
        assert!(!reply.body["message"].as_str().unwrap().is_empty());
    }
    let list = app.get("/users", &token).await;
    assert_eq!(list.body, json!([]));
}

/// Control characters that are refused, in `full_name` and `bio` alike.
const CONTROLS: [&str; 10] = [
    "\0", "\u{1}", "\u{8}", "\u{b}", "\u{c}", "\u{1b}", "\u{7f}", "\u{80}", "\u{85}", "\u{9f}",
];
/// Explicit bidi embeddings, overrides and isolates.
const BIDI: [&str; 4] = ["\u{202a}", "\u{202e}", "\u{2066}", "\u{2069}"];

/// Every refused text of `full_name` and `bio`, with the message it gets.
fn bad_texts() -> Vec<(&'static str, String, &'static str)> {
    let name_control = "full_name must not contain control characters";
    let bio_control = "bio must not contain control characters other than tab, line feed and CR LF";
    let mut cases = Vec::new();
    for c in CONTROLS {
        cases.push(("full_name", format!("Ali{c}ce"), name_control));
        cases.push(("bio", format!("Hello{c}"), bio_control));
    }
    for c in ["\t", "\n", "\r", "\r\n"] {
        cases.push(("full_name", format!("Alice{c}Smith"), name_control));
    }
    for lone_cr in ["a\rb", "a\r", "\r", "a\n\rb", "a\r\rb"] {
        cases.push(("bio", lone_cr.to_owned(), bio_control));
    }
    for c in BIDI {
        cases.push((
            "full_name",
            format!("{c}ecila"),
            "full_name must not contain bidirectional override or isolate characters",
        ));
        cases.push((
            "bio",
            format!("x{c}y"),
            "bio must not contain bidirectional override or isolate characters",
        ));
    }
    cases
}

#[tokio::test]
async fn control_characters_in_full_name_or_bio_are_400_on_create() {
    let (app, token) = app_and_alice();
    for (field, text, message) in bad_texts() {
        let reply = app
            .post("/users", &token, with(json!({ field: text })))
            .await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::BAD_REQUEST, &error(400, message)),
            "{field} {text:?}"
        );
    }
    let list = app.get("/users", &token).await;
    assert_eq!(list.body, json!([]));
}

#[tokio::test]
async fn control_characters_in_full_name_or_bio_are_400_on_update() {
    let (app, token) = app_with_alices_profile().await;
    let path = format!("/users/{ALICE}");
    let before = app.get(&path, &token).await.body;
    for (field, text, message) in bad_texts() {
        let reply = app.put(&path, &token, json!({ field: text })).await;
        assert_eq!(
            (reply.status, &reply.body),
            (StatusCode::BAD_REQUEST, &error(400, message)),
            "{field} {text:?}"
        );
    }
    let after = app.get(&path, &token).await.body;
    assert_eq!(after, before);
}

#[tokio::test]
async fn tabs_line_breaks_and_ordinary_unicode_are_kept() {
    let (app, token) = app_and_alice();
    let full_name = "Zoë O'Brien-Łukasz \u{200f}علي\u{200e} 👩\u{200d}💻";
    let bio = "Line one\nLine two\r\n\tindented\u{2028}🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
    let body = with(json!({"full_name": full_name, "bio": bio}));
    let reply = app.post("/users", &token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let path = format!("/users/{ALICE}");
    let got = app.get(&path, &token).await.body;
    assert_eq!(
        (got["full_name"].as_str(), got["bio"].as_str()),
        (Some(full_name), Some(bio))
    );
    let update = app.put(&path, &token, json!({"bio": "\r\n\r\n\t"})).await;
    assert_eq!(update.status, StatusCode::OK, "{:?}", update.body);
}

#[tokio::test]
async fn fields_exactly_at_their_limits_are_accepted() {
    let (app, token) = app_and_alice();
    let body = with(json!({"full_name": "é".repeat(100), "bio": "😀".repeat(1000)}));
    let reply = app.post("/users", &token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let path = format!("/users/{ALICE}");
    let update = app
        .put(
            &path,
            &token,
            json!({"full_name": "x".repeat(100), "bio": "y".repeat(1000)}),
        )
        .await;
    assert_eq!(update.status, StatusCode::OK);
    let got = app.get(&path, &token).await.body;
    assert_eq!(got["bio"].as_str().unwrap().len(), 1000);
}

#[tokio::test]
async fn bad_update_bodies_are_400_and_change_nothing() {
    let (app, token) = app_with_alices_profile().await;
    let path = format!("/users/{ALICE}");
    let before = app.get(&path, &token).await.body;
    for (what, body) in [
        ("full_name 101 chars", json!({"full_name": "x".repeat(101)})),
        (
            "bio 1001 chars",
            json!({"bio": "b".repeat(1001), "full_name": "ok"}),
        ),
        ("bio a number", json!({"bio": 7})),
        (
            "email is not updatable",
            json!({"email": "new@example.com"}),
        ),
        ("username is not updatable", json!({"username": "mallory"})),
        ("array", json!([{"bio": "x"}])),
    ] {
        let reply = app.put(&path, &token, body).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{what}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["status"], "400");
    }
    let after = app.get(&path, &token).await.body;
    assert_eq!(after, before);
}

#[tokio::test]
async fn malformed_bodies_are_400_415_or_413_json() {
    let (app, token) = app_and_alice();
    let path = format!("/users/{ALICE}");
    let cases: Vec<(Method, &str, &str, String, StatusCode)> = vec![
        (
            Method::POST,
            "/users",
            "application/json",
            "{not json".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            String::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            "{\"user_id\":".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            &path,
            "application/json",
            "{\"bio\": \"x\",}".into(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            &path,
            "text/plain",
            "{\"bio\": \"x\"}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/users",
            "application/x-www-form-urlencoded",
            "a=b".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/users",
            "application/json",
            format!("{{\"bio\": \"{}\"}}", "x".repeat(70 * 1024)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (method, uri, content_type, body, expected) in cases {
        let request = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let reply = send(&app.router, request).await;
        assert_eq!(reply.status, expected, "{method} {uri} {content_type}");
        assert_eq!(reply.body["status"], expected.as_str());
    }
}

#[tokio::test]
async fn a_path_id_that_is_not_a_uuid_is_400_not_404() {
    let (app, token) = app_and_alice();
    for id in [
        "123",
        "not-a-uuid",
        "550e8400-e29b-41d4-a716-44665544000",
        "%FF%FE",
        "%20",
    ] {
        let path = format!("/users/{id}");
        for (method, body) in one_profile_routes() {
            let reply = app.call(method.clone(), &path, Some(&token), body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{method} {path}");
            assert_eq!(
                reply.body,
                error(400, "user_id must be a UUID"),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn bad_limits_and_cursors_are_400() {
    let (app, token) = app_with_alices_profile().await;
    for query in [
        "limit=0",
        "limit=5000",
        "limit=1001",
        "limit=abc",
        "limit=-1",
        "limit=1.5",
        "limit=",
        "limit=99999999999999999999999",
        "cursor=",
        "cursor=garbage",
        "cursor=!!!",
        "limit=1&limit=2",
    ] {
        let reply = app.get(&format!("/users?{query}"), &token).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            reply.body
        );
        assert_eq!(reply.body["status"], "400", "{query}");
    }
    for query in ["limit=1", "limit=1000", "limit=%31", "other=ignored"] {
        let reply = app.get(&format!("/users?{query}"), &token).await;
        assert_eq!(reply.status, StatusCode::OK, "{query}");
    }
}

#[tokio::test]
async fn authentication_is_checked_before_the_input() {
    let app = app();
    for (method, path, body) in [
        (
            Method::POST,
            "/users".to_owned(),
            Some(json!({"user_id": "x"})),
        ),
        (Method::GET, "/users/not-a-uuid".to_owned(), None),
        (Method::GET, "/users?limit=0".to_owned(), None),
    ] {
        let reply = app.call(method, &path, None, body).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let (app, token) = app_and_alice();
    let missing = app.get("/profiles", &token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, error(404, "Route not found"));
    let wrong = app.call(Method::PATCH, "/users", Some(&token), None).await;
    assert_eq!(wrong.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(wrong.body, error(405, "Method not allowed"));
}

/// Paths with a `.` or `..` segment, plain or percent-encoded, under `/users`.
const DOT_SEGMENT_PATHS: [&str; 8] = [
    "/users/..",
    "/users/.",
    "/users/%2e%2e",
    "/users/%2E%2E",
    "/users/.%2E",
    "/api/users/%2e",
    "/api/users/..",
    "/api/users/..\\",
];

#[tokio::test]
async fn dot_segments_in_the_path_are_the_unknown_route_404_with_or_without_a_token() {
    let (app, token) = app_and_alice();
    for path in DOT_SEGMENT_PATHS {
        for bearer in [None, Some(token.as_str())] {
            let mut request = Request::get(path);
            if let Some(t) = bearer {
                request = request.header("authorization", format!("Bearer {t}"));
            }
            let reply = send(&app.router, request.body(Body::empty()).unwrap()).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.body, error(404, "Route not found"), "{path}");
        }
    }
}
