//! A profile write holds only if the token is still good when the body has arrived and
//! the write is made: a body landing after the session ended, the account was deleted
//! or the token expired writes nothing (401), in local and in remote auth mode.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use http_body_util::Channel;
use serde_json::{Value, json};
use uuid::Uuid;

use domain::Username;
use stores::Stores;
use testkit::*;
use users::{AppState, Authenticator};

use crate::support::*;

/// Sends `method path` with `token` to `router` at once and its body `body` only once
/// `meanwhile` has run (after the router has taken the request in and waits for the
/// body): what the router answered.
async fn with_late_body(
    router: &axum::Router,
    method: Method,
    path: &str,
    token: &str,
    body: &Value,
    meanwhile: impl std::future::Future<Output = ()>,
) -> Reply {
    let (mut sender, channel) = Channel::<Bytes, Infallible>::new(1);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::new(channel))
        .unwrap();
    let text = body.to_string();
    let late = async move {
        meanwhile.await;
        sender.send_data(Bytes::from(text)).await.unwrap();
    };
    let (reply, ()) = tokio::join!(send(router, request), late);
    reply
}

/// Alice's profile created through `router` with `token`, its body landing only once
/// `meanwhile` has run: what the router answered.
async fn late_create(
    router: &axum::Router,
    token: &str,
    meanwhile: impl std::future::Future<Output = ()>,
) -> Reply {
    let profile = profile_json(ALICE, "alice");
    with_late_body(router, Method::POST, "/users", token, &profile, meanwhile).await
}

/// Alice's profile as bob reads it.
async fn alices_profile_for_bob(app: &TestApp) -> Reply {
    let bob = app.token(BOB, "bob");
    app.get(&format!("/users/{ALICE}"), &bob).await
}

#[tokio::test]
async fn a_create_whose_body_arrives_after_a_logout_writes_nothing() {
    let (app, token) = app_and_alice();
    let logout = end_session_of(app.sessions.as_ref(), &token);
    let reply = late_create(&app.router, &token, logout).await;
    assert_eq!(reply, invalid_token());
    let read = alices_profile_for_bob(&app).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "no profile was written");
}

#[tokio::test]
async fn an_update_whose_body_arrives_after_a_logout_changes_nothing() {
    let (app, token) = app_with_alices_profile().await;
    let reply = with_late_body(
        &app.router,
        Method::PUT,
        &format!("/users/{ALICE}"),
        &token,
        &json!({"bio": "written after the logout"}),
        end_session_of(app.sessions.as_ref(), &token),
    )
    .await;
    assert_eq!(reply, invalid_token());
    let read = alices_profile_for_bob(&app).await;
    assert_eq!(read.body["bio"], "Software developer passionate about Rust");
}

#[tokio::test]
async fn a_token_that_expires_while_its_body_arrives_cannot_write() {
    let app = app();
    let exp = chrono::Utc::now().timestamp() + 1;
    let short = app.token_expiring_at(ALICE, "alice", exp);
    let until_expired = async {
        while chrono::Utc::now().timestamp() <= exp {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reply = late_create(&app.router, &short, until_expired).await;
    assert_eq!(reply, invalid_token());
    let read = alices_profile_for_bob(&app).await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "no profile was written");
}

/// Asserts that alice's profile, created through `router` with `token` but landing
/// only after her account was deleted from `stores`, is refused and never stored.
async fn assert_no_profile_when_the_account_goes_first(
    router: &axum::Router,
    stores: &Stores,
    token: &str,
) {
    let reply = late_create(router, token, delete_account(stores, "alice")).await;
    assert_eq!(reply, invalid_token());
    let user_id = Uuid::parse_str(ALICE).unwrap();
    assert_eq!(stores.profiles.get(user_id).await.unwrap(), None);
}

/// Deletes the account named `username` in `stores`, as `DELETE /account` does.
async fn delete_account(stores: &Stores, username: &str) {
    let account = stores
        .accounts
        .find_by_username(&Username::parse(username).unwrap())
        .await
        .unwrap()
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        stores
            .cross_table
            .delete_account(&account, now + 86400, now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_create_whose_body_arrives_after_the_account_was_deleted_leaves_no_profile() {
    let stores = Stores::memory();
    let tokens = tokens();
    let router = users::router(AppState::new(
        stores.profiles.clone(),
        Authenticator::local(tokens.clone(), stores.checks.clone()),
    ));
    let user_id = Uuid::parse_str(ALICE).unwrap();
    let token = signed_in(&stores, &tokens, user_id, "alice").await;
    assert_no_profile_when_the_account_goes_first(&router, &stores, &token).await;
}

/// In remote mode users cannot read the session (`/validate` does not name it): the
/// write is held to the account not being deleted, which a token validated moments
/// before (and cached) cannot hide.
#[tokio::test]
async fn in_remote_mode_a_create_landing_after_the_account_was_deleted_leaves_no_profile() {
    let stores = Stores::memory();
    let url = serve_auth(&stores).await;
    let remote = remote(&url, Duration::from_secs(5));
    let router = users::router(AppState::new(stores.profiles.clone(), remote));
    let user_id = Uuid::parse_str(ALICE).unwrap();
    let token = signed_in(&stores, &tokens(), user_id, "alice").await;
    let listed = send(
        &router,
        Request::get("/users")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);

    assert_no_profile_when_the_account_goes_first(&router, &stores, &token).await;
}
