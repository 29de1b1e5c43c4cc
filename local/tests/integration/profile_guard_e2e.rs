//! A deleted account never keeps a profile, through the local stack, with the in-memory
//! stores and on DynamoDB tables (`DYNAMODB_ENDPOINT`): a create whose body lands after
//! `DELETE /account` answered, creates racing a deletion, and a body that arrives after
//! its token expired all leave no profile (401).

use std::future::Future;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

use testkit::http::{PASSWORD, call, sign_up};
use testkit::tokens;
use tokens::Claims;

use crate::support::{Running, on_both_stores};

/// How long a request's head is given before anything else happens: enough for the
/// token check of a request to run when its head arrives, as it did when a create
/// could outlive the deletion of its account. No outcome depends on it.
const HEAD_START: Duration = Duration::from_millis(300);

fn profile(user_id: &str, name: &str) -> Value {
    json!({"user_id": user_id, "username": name, "email": format!("{name}@example.com"),
           "full_name": name, "bio": "first"})
}

/// `POST /api/users` through the gateway at `api` with `token`: the profile of
/// `user_id` named `name`; the status and body answered.
async fn create(api: &str, token: &str, user_id: &str, name: &str) -> (u16, Value) {
    let body = Some(profile(user_id, name));
    call("POST", format!("{api}/users"), Some(token), body).await
}

/// `POST /api/users` straight to users at `base` with `token`: the head now, the body
/// only once `meanwhile` has run; the status answered.
async fn create_late(
    base: &str,
    token: &str,
    body: &Value,
    meanwhile: impl Future<Output = ()>,
) -> u16 {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let text = body.to_string();
    let head = format!(
        "POST /api/users HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        text.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    meanwhile.await;
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

/// `DELETE /api/account` of the caller of `token`, which must succeed.
async fn delete_account(api: &str, token: &str) {
    let (status, body) = call(
        "DELETE",
        format!("{api}/account"),
        Some(token),
        Some(json!({"password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// The status of `GET /api/users/{user_id}` as another user (`reader`).
async fn profile_status(api: &str, reader: &str, user_id: &str) -> u16 {
    call("GET", format!("{api}/users/{user_id}"), Some(reader), None)
        .await
        .0
}

/// Sends alice's profile straight to users with `token`, its body only once `meanwhile`
/// has run, and asserts that it is refused (401) and that `reader` finds no profile.
async fn assert_late_create_refused(
    running: &Running,
    reader: &str,
    alice: &str,
    token: &str,
    meanwhile: impl Future<Output = ()>,
) {
    let users = running.stack.users_url();
    let status = create_late(&users, token, &profile(alice, "alice"), meanwhile).await;
    assert_eq!(status, 401);
    let api = format!("{}/api", running.stack.gateway_url());
    assert_eq!(profile_status(&api, reader, alice).await, 404);
}

async fn a_create_landing_after_the_account_deletion_leaves_no_profile(running: Running) {
    let api = format!("{}/api", running.stack.gateway_url());
    let (_, reader) = sign_up(&api, "reader").await;
    let (alice, token) = sign_up(&api, "alice").await;
    let deleted = async {
        tokio::time::sleep(HEAD_START).await;
        delete_account(&api, &token).await;
    };
    assert_late_create_refused(&running, &reader, &alice, &token, deleted).await;

    let (again, token) = sign_up(&api, "alice").await;
    let (status, body) = create(&api, &token, &again, "alice").await;
    assert_eq!(status, 200, "{body}");
    let (status, listed) = call("GET", format!("{api}/users"), Some(&reader), None).await;
    assert_eq!(status, 200);
    let owners: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["username"] == "alice")
        .map(|p| p["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(owners, [again.as_str()], "the freed name has one profile");
    running.stop().await;
}

on_both_stores!(a_create_landing_after_the_account_deletion_leaves_no_profile(&[]) =>
    a_create_landing_after_the_account_deletion_leaves_no_profile_in_memory,
    a_create_landing_after_the_account_deletion_leaves_no_profile_on_dynamodb);

/// Creates sent over and over while the account is deleted: whichever land, none
/// outlives the deletion.
async fn creates_racing_a_deletion_leave_no_profile(running: Running) {
    let api = format!("{}/api", running.stack.gateway_url());
    let (_, reader) = sign_up(&api, "reader").await;
    for round in 0..3 {
        let name = format!("racer{round}");
        let (user_id, token) = sign_up(&api, &name).await;
        let done = std::sync::atomic::AtomicBool::new(false);
        let creates = async {
            let mut statuses = Vec::new();
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, body) = create(&api, &token, &user_id, &name).await;
                assert!(matches!(status, 200 | 401 | 409), "{status}: {body}");
                statuses.push(status);
            }
            statuses
        };
        let deletion = async {
            delete_account(&api, &token).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        };
        let (statuses, ()) = tokio::join!(creates, deletion);
        assert!(!statuses.is_empty());
        let (status, _) = create(&api, &token, &user_id, &name).await;
        assert_eq!(status, 401, "after the deletion");
        assert_eq!(profile_status(&api, &reader, &user_id).await, 404);
    }
    running.stop().await;
}

on_both_stores!(creates_racing_a_deletion_leave_no_profile(&[]) =>
    creates_racing_a_deletion_leave_no_profile_in_memory,
    creates_racing_a_deletion_leave_no_profile_on_dynamodb);

/// A token of a live session that expires about a second from now.
fn expiring_soon(token: &str) -> (String, i64) {
    let tokens = tokens();
    let claims = tokens.verify(token).unwrap();
    let now = chrono::Utc::now().timestamp();
    let exp = now + 1;
    let short = tokens
        .sign(&Claims {
            iat: now,
            exp,
            jti: Uuid::new_v4().to_string(),
            ..claims
        })
        .unwrap();
    (short, exp)
}

async fn a_body_arriving_after_its_token_expired_writes_nothing(running: Running) {
    let api = format!("{}/api", running.stack.gateway_url());
    let (_, reader) = sign_up(&api, "reader").await;
    let (alice, token) = sign_up(&api, "alice").await;
    let (short, exp) = expiring_soon(&token);
    let expired = async {
        while chrono::Utc::now().timestamp() <= exp {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_late_create_refused(&running, &reader, &alice, &short, expired).await;
    running.stop().await;
}

on_both_stores!(a_body_arriving_after_its_token_expired_writes_nothing(&[]) =>
    a_body_arriving_after_its_token_expired_writes_nothing_in_memory,
    a_body_arriving_after_its_token_expired_writes_nothing_on_dynamodb);
