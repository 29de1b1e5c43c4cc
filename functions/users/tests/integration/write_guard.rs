//! A profile write holds only if the token is still good when the body has arrived and
//! the write is made: a body landing after the session ended, the account was deleted
//! or the token expired writes nothing (401), in local and in remote auth mode.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use http_body_util::Channel;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use uuid::Uuid;

use domain::Username;
use settings::HttpClientConfig;
use stores::{SessionStore, Stores};
use testkit::*;
use tokens::Claims;
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

fn refused() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        error(401, "Invalid or expired token"),
    )
}

async fn end_session_of(app: &TestApp, token: &str) {
    let claims = app.tokens.verify(token).unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        app.sessions
            .end_session(Some(claims.user_id()), claims.session_id(), now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_create_whose_body_arrives_after_a_logout_writes_nothing() {
    let app = app();
    let token = app.token(ALICE, "alice");
    let reply = with_late_body(
        &app.router,
        Method::POST,
        "/users",
        &token,
        &profile_json(ALICE, "alice"),
        end_session_of(&app, &token),
    )
    .await;
    assert_eq!((reply.status, reply.body), refused());
    let other = app.token(BOB, "bob");
    let read = app
        .call(Method::GET, &format!("/users/{ALICE}"), Some(&other), None)
        .await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "no profile was written");
}

#[tokio::test]
async fn an_update_whose_body_arrives_after_a_logout_changes_nothing() {
    let app = app();
    app.create(ALICE, "alice").await;
    let token = app.token(ALICE, "alice");
    let reply = with_late_body(
        &app.router,
        Method::PUT,
        &format!("/users/{ALICE}"),
        &token,
        &json!({"bio": "written after the logout"}),
        end_session_of(&app, &token),
    )
    .await;
    assert_eq!((reply.status, reply.body), refused());
    let other = app.token(BOB, "bob");
    let read = app
        .call(Method::GET, &format!("/users/{ALICE}"), Some(&other), None)
        .await;
    assert_eq!(read.body["bio"], "Software developer passionate about Rust");
}

#[tokio::test]
async fn a_token_that_expires_while_its_body_arrives_cannot_write() {
    let app = app();
    let user_id = Uuid::parse_str(ALICE).unwrap();
    let sid = app.session(user_id, "alice", 3600);
    let now = chrono::Utc::now().timestamp();
    let exp = now + 1;
    let short = app
        .tokens
        .sign(&Claims {
            sub: ALICE.into(),
            username: "alice".into(),
            iat: now,
            exp,
            jti: Uuid::new_v4().to_string(),
            sid: sid.to_string(),
            iss: tokens::DEFAULT_ISSUER.into(),
            aud: tokens::DEFAULT_AUDIENCE.into(),
        })
        .unwrap();
    let until_expired = async {
        while chrono::Utc::now().timestamp() <= exp {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let reply = with_late_body(
        &app.router,
        Method::POST,
        "/users",
        &short,
        &profile_json(ALICE, "alice"),
        until_expired,
    )
    .await;
    assert_eq!((reply.status, reply.body), refused());
    let other = app.token(BOB, "bob");
    let read = app
        .call(Method::GET, &format!("/users/{ALICE}"), Some(&other), None)
        .await;
    assert_eq!(read.status, StatusCode::NOT_FOUND, "no profile was written");
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
    let reply = with_late_body(
        &router,
        Method::POST,
        "/users",
        &token,
        &profile_json(ALICE, "alice"),
        delete_account(&stores, "alice"),
    )
    .await;
    assert_eq!((reply.status, reply.body), refused());
    assert_eq!(stores.profiles.get(user_id).await.unwrap(), None);
}

/// In remote mode users cannot read the session (`/validate` does not name it): the
/// write is held to the account not being deleted, which a token validated moments
/// before (and cached) cannot hide.
#[tokio::test]
async fn in_remote_mode_a_create_landing_after_the_account_was_deleted_leaves_no_profile() {
    let stores = Stores::memory();
    let auth = auth::router(auth::AppState::new(&stores, tokens(), &config(&[])));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, auth).await.unwrap() });
    let remote = Authenticator::remote(
        &url.parse().unwrap(),
        &HttpClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(5),
        },
    )
    .unwrap();
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

    let reply = with_late_body(
        &router,
        Method::POST,
        "/users",
        &token,
        &profile_json(ALICE, "alice"),
        delete_account(&stores, "alice"),
    )
    .await;
    assert_eq!((reply.status, reply.body), refused());
    assert_eq!(stores.profiles.get(user_id).await.unwrap(), None);
}
