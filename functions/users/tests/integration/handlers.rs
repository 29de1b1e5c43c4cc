//! The users section of the spec, example by example and error row by error row.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use serde_json::json;
use uuid::Uuid;

use errors::Error;
use stores::{Cursor, Page, Profile, ProfilePatch, ProfileStore, WriteGuard};
use testkit::*;
use users::{AppState, Authenticator};

use crate::support::*;

#[tokio::test]
async fn health_answers_as_the_spec_shows_without_a_token() {
    let app = app();
    for path in ["/", "/api"] {
        let reply = app.call(Method::GET, path, None, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(
            reply.body,
            json!({"status": "ok", "service": "user-service", "message": "User service is running"}),
            "{path}"
        );
    }
}

#[tokio::test]
async fn create_answers_as_the_spec_shows() {
    let (app, token) = app_and_alice();
    let reply = app
        .post(
            "/users",
            &token,
            json!({
                "user_id": ALICE,
                "username": "alice",
                "email": "alice@example.com",
                "full_name": "Alice Smith",
                "bio": "Software developer passionate about Rust"
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"user_id": ALICE, "message": "Profile created successfully"})
    );
}

#[tokio::test]
async fn get_answers_the_profile_with_an_rfc3339_utc_timestamp() {
    let app = app();
    let before = chrono::Utc::now().timestamp();
    app.create(ALICE, "alice").await;
    let after = chrono::Utc::now().timestamp();
    let token = app.token(BOB, "bob");
    let reply = app.get(&format!("/users/{ALICE}"), &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    let created_at = reply.body["created_at"].as_str().unwrap().to_owned();
    assert_eq!(
        reply.body,
        json!({
            "user_id": ALICE,
            "username": "alice",
            "email": "alice@example.com",
            "full_name": "alice Smith",
            "bio": "Software developer passionate about Rust",
            "created_at": created_at
        })
    );
    assert_eq!(
        created_at.len(),
        "2024-01-15T10:30:00Z".len(),
        "{created_at}"
    );
    assert!(created_at.ends_with('Z'), "{created_at}");
    let parsed = chrono::DateTime::parse_from_rfc3339(&created_at).unwrap();
    assert!(
        (before..=after).contains(&parsed.timestamp()),
        "{created_at}"
    );
}

#[tokio::test]
async fn list_answers_every_profile_as_an_array_in_user_id_order() {
    let app = app();
    app.create(BOB, "bob").await;
    app.create(ALICE, "alice").await;
    let token = app.token(ALICE, "alice");
    let reply = app.get("/users", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    let items = reply.body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["user_id"], ALICE);
    assert_eq!(items[0]["username"], "alice");
    assert_eq!(items[1]["user_id"], BOB);
    assert_eq!(items[1]["email"], "bob@example.com");
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "user_id",
                "username",
                "email",
                "full_name",
                "bio",
                "created_at"
            ]
        );
    }
    assert!(reply.headers.get(users::NEXT_CURSOR).is_none());
}

#[tokio::test]
async fn an_empty_listing_is_an_empty_array() {
    let (app, token) = app_and_alice();
    let reply = app.get("/users", &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, json!([]));
}

#[tokio::test]
async fn a_partial_update_changes_only_the_fields_sent() {
    let (app, token) = app_with_alices_profile().await;
    let path = format!("/users/{ALICE}");
    let new_bio = "Senior software developer specializing in microservices";
    let reply = app.put(&path, &token, json!({"bio": new_bio})).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"user_id": ALICE, "message": "Profile updated successfully"})
    );
    let profile = app.get(&path, &token).await.body;
    assert_eq!(profile["bio"], new_bio);
    assert_eq!(profile["full_name"], "alice Smith");

    app.put(
        &path,
        &token,
        json!({"full_name": "Alice Smith", "bio": null}),
    )
    .await;
    let again = app.get(&path, &token).await.body;
    assert_eq!(again["full_name"], "Alice Smith");
    assert_eq!(again["bio"], new_bio);
    assert_eq!(again["email"], profile["email"]);
    assert_eq!(again["created_at"], profile["created_at"]);

    let empty = app.put(&path, &token, json!({})).await;
    assert_eq!(empty.status, StatusCode::OK);
    let unchanged = app.get(&path, &token).await.body;
    assert_eq!(unchanged, again);
}

#[tokio::test]
async fn delete_answers_as_the_spec_shows_and_the_profile_is_gone() {
    let (app, token) = app_with_alices_profile().await;
    let path = format!("/users/{ALICE}");
    let reply = app.delete(&path, &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.body,
        json!({"user_id": ALICE, "message": "Profile deleted successfully"})
    );
    let gone = app.get(&path, &token).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.body, error(404, "User not found"));
    let twice = app.delete(&path, &token).await;
    assert_eq!(twice.status, StatusCode::NOT_FOUND);
    assert_eq!(twice.body, error(404, "User not found"));
}

#[tokio::test]
async fn every_route_also_answers_under_api() {
    let (app, token) = app_and_alice();
    let created = app
        .post("/api/users", &token, profile_json(ALICE, "alice"))
        .await;
    assert_eq!(created.status, StatusCode::OK);
    let path = format!("/api/users/{ALICE}");
    let got = app.get(&path, &token).await;
    assert_eq!(got.body["username"], "alice");
    let listed = app.get("/api/users", &token).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    let updated = app.put(&path, &token, json!({"bio": "x"})).await;
    assert_eq!(updated.status, StatusCode::OK);
    let deleted = app.delete(&path, &token).await;
    assert_eq!(deleted.status, StatusCode::OK);
}

/// Every protected route, with a body where it takes one.
#[tokio::test]
async fn a_missing_authorization_header_is_401_on_every_protected_route() {
    let app = app();
    let missing = error(401, "Missing authorization header");
    app.assert_every_protected_route(None, (StatusCode::UNAUTHORIZED, missing))
        .await;
}

#[tokio::test]
async fn a_non_bearer_authorization_header_is_401() {
    let (app, token) = app_and_alice();
    for header in [
        format!("Basic {token}"),
        token.clone(),
        "Bearer".into(),
        "Bearer    ".into(),
        "Token abc".into(),
    ] {
        for (method, path, body) in protected_routes() {
            let mut request = axum::http::Request::builder()
                .method(method.clone())
                .uri(&path)
                .header("authorization", &header);
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let body = body.map_or(axum::body::Body::empty(), |b| b.to_string().into());
            let reply = send(&app.router, request.body(body).unwrap()).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{header:?} {method} {path}"
            );
            assert_eq!(
                reply.body,
                error(401, "Invalid authorization header format")
            );
        }
    }
}

#[tokio::test]
async fn an_invalid_or_expired_token_is_401_on_every_protected_route() {
    let app = app();
    let other = Arc::new(
        tokens::Tokens::new(
            &settings::Secret::new("a-different-secret-that-is-32-bytes!!".into()).unwrap(),
            std::time::Duration::from_secs(60),
        )
        .unwrap(),
    );
    let valid_claims = app.tokens.verify(&app.token(ALICE, "alice")).unwrap();
    let foreign = other
        .issue(
            Uuid::parse_str(ALICE).unwrap(),
            "alice",
            valid_claims.session_id(),
        )
        .unwrap()
        .token;
    let valid = app.token(ALICE, "alice");
    let mut tampered = valid.clone();
    tampered.pop();
    tampered.push(if valid.ends_with('A') { 'B' } else { 'A' });
    let too_long = "a".repeat(5000);
    for token in [
        app.expired_token(ALICE),
        foreign,
        tampered,
        "not.a.token".into(),
        "garbage".into(),
        too_long,
    ] {
        app.assert_every_protected_route(Some(&token), invalid_token())
            .await;
    }
}

#[tokio::test]
async fn a_missing_profile_is_404_to_read_update_or_delete() {
    let (app, token) = app_and_alice();
    let path = format!("/users/{ALICE}");
    for (method, body) in one_profile_routes() {
        let reply = app.call(method.clone(), &path, Some(&token), body).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(reply.body, error(404, "User not found"));
    }
}

#[tokio::test]
async fn creating_an_existing_profile_is_a_conflict() {
    let (app, token) = app_with_alices_profile().await;
    let mut again = profile_json(ALICE, "alice");
    again["email"] = json!("alice2@example.com");
    let reply = app.post("/users", &token, again).await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.body, error(409, "User already exists"));
    let kept = app.get(&format!("/users/{ALICE}"), &token).await;
    assert_eq!(kept.body["email"], "alice@example.com");
}

#[tokio::test]
async fn concurrent_creates_of_one_profile_let_exactly_one_win() {
    let app = Arc::new(app());
    let token = app.token(ALICE, "alice");
    let attempts = (0..20).map(|i| {
        let app = app.clone();
        let token = token.clone();
        let mut body = profile_json(ALICE, "alice");
        body["email"] = json!(format!("alice{i}@example.com"));
        tokio::spawn(async move { app.post("/users", &token, body).await.status })
    });
    let mut statuses = Vec::new();
    for attempt in attempts.collect::<Vec<_>>() {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        19
    );
}

#[tokio::test]
async fn nobody_creates_changes_or_deletes_another_users_profile() {
    let app = app();
    app.create(ALICE, "alice").await;
    let bob = app.token(BOB, "bob");
    let path = format!("/users/{ALICE}");
    let before = app.get(&path, &bob).await.body;

    let stolen_create = app
        .post(
            "/users",
            &bob,
            profile_json("770e8400-e29b-41d4-a716-446655440002", "carol"),
        )
        .await;
    let update = app.put(&path, &bob, json!({"bio": "pwned"})).await;
    let delete = app.delete(&path, &bob).await;
    for reply in [stolen_create, update, delete] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(
            reply.body,
            error(403, "You can only modify your own profile")
        );
    }
    let after = app.get(&path, &bob).await.body;
    assert_eq!(after, before);
    let carol = app
        .get("/users/770e8400-e29b-41d4-a716-446655440002", &bob)
        .await;
    assert_eq!(carol.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_profile_carries_its_owners_username_only() {
    let app = app();
    let token = app.token(ALICE, "Alice");
    let path = format!("/users/{ALICE}");
    for other in ["bob", "alice_", "Alicia"] {
        let mut body = profile_json(ALICE, other);
        body["email"] = json!("bob@example.com");
        let reply = app.post("/users", &token, body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{other}");
        assert_eq!(
            reply.body,
            error(403, "You can only create a profile with your own username")
        );
    }
    let missing = app.get(&path, &token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let reply = app
        .post("/users", &token, profile_json(ALICE, "aLiCe"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let got = app.get(&path, &token).await;
    assert_eq!(got.body["username"], "Alice", "the account's own spelling");
    assert_eq!(got.body["email"], "aLiCe@example.com");
}

#[tokio::test]
async fn another_users_missing_profile_is_403_not_404() {
    let app = app();
    let bob = app.token(BOB, "bob");
    let path = format!("/users/{ALICE}");
    for (method, body) in [
        (Method::PUT, Some(json!({"bio": "x"}))),
        (Method::DELETE, None),
    ] {
        let reply = app.call(method, &path, Some(&bob), body).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn a_profile_id_in_another_uuid_spelling_is_the_same_profile() {
    let (app, token) = app_with_alices_profile().await;
    let upper = ALICE.to_uppercase();
    let reply = app.get(&format!("/users/{upper}"), &token).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["user_id"], ALICE);
}

/// A store whose every call fails, as a broken database would.
struct BrokenStore;

#[async_trait]
impl ProfileStore for BrokenStore {
    async fn create(&self, _: &Profile, _: &WriteGuard) -> Result<(), Error> {
        Err(Error::internal("table profiles: connection reset"))
    }
    async fn get(&self, _: Uuid) -> Result<Option<Profile>, Error> {
        Err(Error::internal("table profiles: connection reset"))
    }
    async fn update(&self, _: Uuid, _: &ProfilePatch, _: &WriteGuard) -> Result<(), Error> {
        Err(Error::internal("table profiles: connection reset"))
    }
    async fn delete(&self, _: Uuid) -> Result<(), Error> {
        Err(Error::internal("table profiles: connection reset"))
    }
    async fn list(&self, _: usize, _: Option<Cursor>) -> Result<Page<Profile>, Error> {
        Err(Error::internal("table profiles: connection reset"))
    }
}

#[tokio::test]
async fn a_store_failure_is_a_generic_500_that_leaks_nothing() {
    let tokens = tokens();
    let store = Arc::new(stores::memory::MemoryProfileStore::new());
    let (accounts, sessions) = sessions(&store);
    let router = users::router(AppState::new(
        Arc::new(BrokenStore),
        Authenticator::local(tokens.clone(), sessions.clone()),
    ));
    let app = TestApp {
        router,
        store,
        tokens,
        accounts,
        sessions,
    };
    let token = app.token(ALICE, "alice");
    let internal = error(500, "Internal server error");
    app.assert_every_protected_route(Some(&token), (StatusCode::INTERNAL_SERVER_ERROR, internal))
        .await;
}

#[tokio::test]
async fn the_router_serves_exactly_its_listed_routes() {
    let wrong = testkit::route_mismatches(app().router, users::ROUTES).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// The app of [`app`], showing emails as `emails` says.
fn app_showing(emails: users::config::ProfileEmails) -> TestApp {
    let app = app();
    let router = users::router(
        AppState::new(
            app.store.clone(),
            Authenticator::local(app.tokens.clone(), app.sessions.clone()),
        )
        .with_profile_emails(emails),
    );
    TestApp { router, ..app }
}

#[tokio::test]
async fn with_profile_emails_owner_only_the_owner_reads_an_email() {
    use users::config::ProfileEmails;
    for emails in [ProfileEmails::All, ProfileEmails::Owner] {
        let app = app_showing(emails);
        app.create(ALICE, "alice").await;
        app.create(BOB, "bob").await;
        let alice = app.token(ALICE, "alice");
        let email_of = |body: &serde_json::Value, id: &str| -> serde_json::Value {
            let list = body.as_array().expect("a list");
            let one = list.iter().find(|p| p["user_id"] == id).expect("listed");
            one["email"].clone()
        };
        let listed = app.get("/users", &alice).await;
        assert_eq!(listed.status, StatusCode::OK);
        let own = app.get(&format!("/users/{ALICE}"), &alice).await;
        let other = app.get(&format!("/users/{BOB}"), &alice).await;
        assert_eq!(other.status, StatusCode::OK);
        let bob_email = profile_json(BOB, "bob")["email"].clone();
        let alice_email = profile_json(ALICE, "alice")["email"].clone();
        assert_eq!(own.body["email"], alice_email, "{emails:?}");
        assert_eq!(email_of(&listed.body, ALICE), alice_email, "{emails:?}");
        let hidden = match emails {
            ProfileEmails::All => bob_email,
            ProfileEmails::Owner => serde_json::Value::Null,
        };
        assert_eq!(other.body["email"], hidden, "{emails:?}");
        assert_eq!(email_of(&listed.body, BOB), hidden, "{emails:?}");
        assert_eq!(other.body["username"], "bob", "the rest is shown");
    }
}
