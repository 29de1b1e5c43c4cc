//! Refresh, logout and brute-force protection, each test run on the in-memory stores
//! and on DynamoDB tables (`DYNAMODB_ENDPOINT`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use futures::future::join_all;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use settings::Secret;
use testkit::dynamodb::TempTables;
use testkit::*;

use crate::support::*;

#[derive(Clone, Copy)]
enum Backend {
    Memory,
    Dynamodb,
}

/// An auth app configured with `extra` on top of the test defaults, on one backend.
struct Subject {
    app: Router,
    tables: Option<TempTables>,
    backend: Backend,
}

impl Backend {
    /// `None` when the DynamoDB server is missing outside CI (the test skips).
    async fn start(self, extra: &[(&str, &str)]) -> Option<Subject> {
        let wanted = config(extra);
        match self {
            Backend::Memory => Some(Subject {
                app: auth::router(state_with(&wanted)),
                tables: None,
                backend: self,
            }),
            Backend::Dynamodb => {
                let tables = TempTables::create().await?;
                let mut config: auth::Config = tables.config();
                config.tokens.secret = Some(Secret::new(SECRET.into()).unwrap());
                config.bcrypt_cost = wanted.bcrypt_cost;
                config.login_limits = wanted.login_limits;
                config.register_limits = wanted.register_limits;
                config.tokens.refresh_ttl = wanted.tokens.refresh_ttl;
                config.tokens.refresh_reuse_interval = wanted.tokens.refresh_reuse_interval;
                config.hashing = wanted.hashing;
                config.trusted_proxies = wanted.trusted_proxies.clone();
                let state = auth::AppState::from_config(&config).await.unwrap();
                Some(Subject {
                    app: auth::router(state),
                    tables: Some(tables),
                    backend: self,
                })
            }
        }
    }

    /// Runs `test` on a fresh subject configured with `extra`, then checks and deletes
    /// its tables; skipped when the DynamoDB server is missing outside CI.
    async fn run(self, extra: &[(&str, &str)], test: impl AsyncFnOnce(&Subject)) {
        let Some(s) = self.start(extra).await else {
            return;
        };
        test(&s).await;
        if let Some(tables) = s.tables {
            tables.delete().await;
        }
    }
}

/// One request: an optional JSON body, bearer token and client address.
async fn call(
    app: &Router,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
    peer: Option<&str>,
) -> Reply {
    let mut builder = Request::post(path);
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let mut request = match body {
        Some(body) => builder
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    if let Some(peer) = peer {
        let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
    }
    send(app, request).await
}

/// `POST /login` of `username` with `password` from the client address `peer`.
async fn login_from(app: &Router, username: &str, password: &str, peer: &str) -> Reply {
    let body = json!({"username": username, "password": password});
    call(app, "/login", Some(body), None, Some(peer)).await
}

const PASSWORD: &str = "securePassword123";

async fn signed_up(app: &Router, name: &str) -> Value {
    let Reply { status, body, .. } =
        register(app, name, &format!("{name}@example.com"), PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let Reply { status, body, .. } = login(app, name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn refresh(app: &Router, refresh_token: &Value) -> Reply {
    call(
        app,
        "/refresh",
        Some(json!({"refresh_token": refresh_token})),
        None,
        None,
    )
    .await
}

async fn validate(app: &Router, token: &Value) -> Reply {
    call(app, "/validate", Some(json!({"token": token})), None, None).await
}

async fn logout(app: &Router, session: &Value, body: Option<Value>) -> Reply {
    call(app, "/logout", body, session["token"].as_str(), None).await
}

fn refused_refresh() -> Value {
    error(401, "Invalid or expired refresh token")
}

fn locked_out() -> Value {
    error(429, "Too many failed login attempts, try again later")
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a 429 says when to retry")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn login_answers_a_refresh_token_that_refresh_rotates(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(first.len(), 43, "256 bits in base64url");
    assert_eq!(session.as_object().unwrap().len(), 4);

    let reply = refresh(&s.app, &session["refresh_token"]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["token", "token_type", "expires_in", "refresh_token"],
        "answered exactly like /login"
    );
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["expires_in"], 86400);
    assert_ne!(reply.body["refresh_token"], session["refresh_token"]);
    let old = tokens().verify(session["token"].as_str().unwrap()).unwrap();
    let new = tokens()
        .verify(reply.body["token"].as_str().unwrap())
        .unwrap();
    assert_eq!((new.sub, new.username), (old.sub, old.username));
    assert_ne!(new.jti, old.jti);
    assert_eq!(
        validate(&s.app, &reply.body["token"]).await.status,
        StatusCode::OK
    );

    let again = refresh(&s.app, &reply.body["refresh_token"]).await;
    assert_eq!(again.status, StatusCode::OK, "the new one rotates in turn");
}

async fn a_reused_refresh_token_revokes_its_whole_family(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let other_device = login(&s.app, "john_doe", PASSWORD).await.body;
    let rotated = refresh(&s.app, &session["refresh_token"]).await.body;

    let replayed = refresh(&s.app, &session["refresh_token"]).await;
    assert_eq!(
        (replayed.status, replayed.body),
        (StatusCode::UNAUTHORIZED, refused_refresh())
    );
    let newest = refresh(&s.app, &rotated["refresh_token"]).await;
    assert_eq!(
        (newest.status, newest.body),
        (StatusCode::UNAUTHORIZED, refused_refresh()),
        "the legitimate holder's newest token dies with its family"
    );
    let elsewhere = refresh(&s.app, &other_device["refresh_token"]).await;
    assert_eq!(
        elsewhere.status,
        StatusCode::OK,
        "another login is another family"
    );
}

/// A refresh whose answer was lost (a gateway timeout, a dropped connection) is
/// retried with the token it already retired: within `REFRESH_REUSE_INTERVAL_SECS`
/// (default 10) that is answered with a new pair of the same session, which lives on,
/// and the pair the lost answer carried stays valid too.
async fn a_retried_refresh_within_the_reuse_interval_keeps_the_session(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let lost = refresh(&s.app, &session["refresh_token"]).await;
    assert_eq!(lost.status, StatusCode::OK, "{}", lost.body);

    let retried = refresh(&s.app, &session["refresh_token"]).await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_ne!(retried.body["refresh_token"], lost.body["refresh_token"]);
    let sid = |reply: &Value| {
        tokens()
            .verify(reply["token"].as_str().unwrap())
            .unwrap()
            .sid
    };
    assert_eq!(sid(&retried.body), sid(&session), "the same session");
    for pair in [&session, &lost.body, &retried.body] {
        assert_eq!(
            validate(&s.app, &pair["token"]).await.status,
            StatusCode::OK
        );
    }
    for pair in [&lost.body, &retried.body] {
        let next = refresh(&s.app, &pair["refresh_token"]).await;
        assert_eq!(next.status, StatusCode::OK, "both successors stay valid");
        assert_eq!(sid(&next.body), sid(&session));
    }
}

async fn unknown_and_malformed_refresh_tokens_are_refused(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let unknown = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let access_token = session["token"].as_str().unwrap();
    for token in [
        unknown,
        "",
        "short",
        access_token,
        &"A".repeat(10_000),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ] {
        let reply = refresh(&s.app, &json!(token)).await;
        assert_eq!(
            (reply.status, reply.body),
            (StatusCode::UNAUTHORIZED, refused_refresh()),
            "{token:.50}"
        );
    }
    for body in [
        json!({}),
        json!({"refresh_token": 42}),
        json!({"refresh_token": null}),
    ] {
        let reply = call(&s.app, "/refresh", Some(body.clone()), None, None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(reply.body["status"], "400");
    }
    assert_eq!(
        refresh(&s.app, &session["refresh_token"]).await.status,
        StatusCode::OK,
        "failed attempts do not touch a good token"
    );
}

async fn logout_ends_the_whole_session_everywhere_auth_checks_it(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let second = login(&s.app, "john_doe", PASSWORD).await.body;

    let reply = logout(&s.app, &session, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body, json!({"message": "Logged out successfully"}));

    let revoked = error(401, "Token has been revoked");
    let checked = validate(&s.app, &session["token"]).await;
    assert_eq!(
        (checked.status, checked.body),
        (StatusCode::UNAUTHORIZED, revoked.clone())
    );
    let twice = logout(&s.app, &session, None).await;
    assert_eq!(
        (twice.status, twice.body),
        (StatusCode::UNAUTHORIZED, revoked)
    );

    assert_eq!(
        validate(&s.app, &second["token"]).await.status,
        StatusCode::OK,
        "another session of the same user lives on"
    );
    assert_eq!(
        (
            refresh(&s.app, &session["refresh_token"]).await.status,
            refresh(&s.app, &session["refresh_token"]).await.body
        ),
        (StatusCode::UNAUTHORIZED, refused_refresh()),
        "the logged-out session's refresh token ends with it, named in the body or not"
    );
}

async fn logout_with_a_refresh_token_ends_its_family(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let rotated = refresh(&s.app, &session["refresh_token"]).await.body;
    let reply = logout(
        &s.app,
        &rotated,
        Some(json!({"refresh_token": rotated["refresh_token"]})),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let after = refresh(&s.app, &rotated["refresh_token"]).await;
    assert_eq!(
        (after.status, after.body),
        (StatusCode::UNAUTHORIZED, refused_refresh())
    );
    assert_eq!(
        validate(&s.app, &session["token"]).await.status,
        StatusCode::UNAUTHORIZED,
        "an earlier access token of the same session ends with it"
    );

    let fresh = login(&s.app, "john_doe", PASSWORD).await.body;
    for body in [
        json!({"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
        json!({"refresh_token": "not one of ours"}),
        json!({"refresh_token": null}),
        json!({}),
    ] {
        let session = login(&s.app, "john_doe", PASSWORD).await.body;
        let reply = logout(&s.app, &session, Some(body.clone())).await;
        assert_eq!(reply.status, StatusCode::OK, "{body}: {}", reply.body);
    }
    assert_eq!(
        refresh(&s.app, &fresh["refresh_token"]).await.status,
        StatusCode::OK
    );
}

async fn logout_refuses_another_users_refresh_token_and_revokes_nothing(s: &Subject) {
    let alice = signed_up(&s.app, "alice").await;
    let bob = signed_up(&s.app, "bob").await;
    let reply = logout(
        &s.app,
        &alice,
        Some(json!({"refresh_token": bob["refresh_token"]})),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::UNAUTHORIZED, refused_refresh())
    );
    assert_eq!(
        validate(&s.app, &alice["token"]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        refresh(&s.app, &bob["refresh_token"]).await.status,
        StatusCode::OK
    );
}

async fn logout_without_a_usable_bearer_token_is_refused(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let mut expired = tokens().verify(session["token"].as_str().unwrap()).unwrap();
    expired.iat -= 7200;
    expired.exp = expired.iat + 60;
    let expired = tokens().sign(&expired).unwrap();
    for (authorization, message) in [
        (None, "Missing authorization header"),
        (Some("Basic abc"), "Invalid authorization header format"),
        (Some("Bearer not.a.token"), "Invalid or malformed token"),
        (Some(&*format!("Bearer {expired}")), "Token has expired"),
    ] {
        let mut request = Request::post("/logout");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let Reply { status, body, .. } = send(&s.app, request.body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, error(401, message)),
            "{authorization:?}"
        );
    }
    let token = session["token"].as_str().unwrap();
    let request = Request::post("/logout")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    assert_eq!(send(&s.app, request).await.status, StatusCode::BAD_REQUEST);
    let request = Request::post("/logout")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "text/plain")
        .body(Body::from("refresh"))
        .unwrap();
    assert_eq!(
        send(&s.app, request).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        validate(&s.app, &session["token"]).await.status,
        StatusCode::OK,
        "a refused logout revokes nothing"
    );
}

/// Twenty wrong passwords for `victim`, each in a task of its own, all at once, from
/// `peer` if given.
async fn twenty_guesses_at_once(app: &Router, peer: Option<&'static str>) -> Vec<Reply> {
    racing(app, 20, move |app, i| async move {
        let guess = json!({"username": "victim", "password": format!("guess-number-{i}")});
        call(&app, "/login", Some(guess), None, peer).await
    })
    .await
}

async fn twenty_parallel_wrong_passwords_get_at_most_the_limit_of_401s(s: &Subject) {
    register(&s.app, "victim", "victim@example.com", PASSWORD).await;
    let replies = twenty_guesses_at_once(&s.app, None).await;
    let refused = with_status(&replies, StatusCode::UNAUTHORIZED).len();
    let locked = with_status(&replies, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused, 5, "exactly the limit were checked");
    assert_eq!(locked.len(), 15);
    for reply in locked {
        assert_eq!(reply.body, locked_out());
        assert!((1..=900).contains(&retry_after(reply)));
    }
    let right = login(&s.app, "victim", PASSWORD).await;
    assert_eq!(
        right,
        (StatusCode::TOO_MANY_REQUESTS, locked_out()),
        "even the right password waits out the lockout"
    );
    let Reply { status, .. } = login(&s.app, "someone_else", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "other usernames are not locked"
    );
}

async fn failures_are_limited_per_client_address_too(s: &Subject) {
    let attacker = "203.0.113.66";
    for name in ["anna", "bert", "carl"] {
        let reply = login_from(&s.app, name, "wrong-password", attacker).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{name}");
    }
    let reply = login_from(&s.app, "dora", "wrong-password", attacker).await;
    assert_eq!(
        (reply.status, &reply.body),
        (StatusCode::TOO_MANY_REQUESTS, &locked_out())
    );
    assert!(retry_after(&reply) >= 1);
    let reply = login_from(&s.app, "dora", "wrong-password", "198.51.100.1").await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "other addresses are not locked"
    );
}

async fn a_lockout_ends_when_its_window_does(s: &Subject) {
    register(&s.app, "john_doe", "john@example.com", PASSWORD).await;
    for _ in 0..2 {
        assert_eq!(
            login(&s.app, "john_doe", "wrong-password").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let body = json!({"username": "john_doe", "password": PASSWORD});
    let locked = call(&s.app, "/login", Some(body.clone()), None, None).await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&locked);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let after = call(&s.app, "/login", Some(body), None, None).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
}

async fn a_successful_login_resets_the_username_counter(s: &Subject) {
    register(&s.app, "john_doe", "john@example.com", PASSWORD).await;
    let wrong = || login(&s.app, "john_doe", "wrong-password");
    for _ in 0..2 {
        assert_eq!(wrong().await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        login(&s.app, "JOHN_DOE", PASSWORD).await.status,
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            wrong().await.status,
            StatusCode::UNAUTHORIZED,
            "the count started again"
        );
    }
    assert_eq!(wrong().await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        login(&s.app, "John_Doe", "wrong-password").await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the username counts in any case"
    );
}

/// Asserts that refusals skip bcrypt (at cost 10): `checked`, which runs it, is answered
/// its status; then `refused(n)` for `n` in `0..3` are each answered 429, each at least
/// four times faster.
async fn assert_refusals_skip_bcrypt(
    (checked, status): (impl Future<Output = Reply>, StatusCode),
    mut refused: impl AsyncFnMut(usize) -> Reply,
) {
    let started = Instant::now();
    assert_eq!(checked.await.status, status);
    let checked = started.elapsed();
    let mut fastest_refused = Duration::MAX;
    for n in 0..3 {
        let started = Instant::now();
        assert_eq!(refused(n).await.status, StatusCode::TOO_MANY_REQUESTS);
        fastest_refused = fastest_refused.min(started.elapsed());
    }
    eprintln!("bcrypt cost 10: {checked:?}; refused: {fastest_refused:?}");
    assert!(
        fastest_refused * 4 < checked,
        "refused {fastest_refused:?} vs checked {checked:?}"
    );
}

async fn a_locked_out_login_does_not_run_bcrypt(s: &Subject) {
    let wrong = || login(&s.app, "nobody", "wrong-password");
    assert_refusals_skip_bcrypt((wrong(), StatusCode::UNAUTHORIZED), async |_| wrong().await).await;
}

fn too_many_registrations() -> Value {
    error(
        429,
        "Too many registrations from this address, try again later",
    )
}

/// A registration of `name` from `peer`.
async fn register_from(app: &Router, name: &str, peer: &str) -> Reply {
    register_with_email_from(app, name, &format!("{name}@example.com"), peer).await
}

/// A registration of `name` with `email` from `peer`.
async fn register_with_email_from(app: &Router, name: &str, email: &str, peer: &str) -> Reply {
    let body = json!({"username": name, "email": email, "password": PASSWORD});
    call(app, "/register", Some(body), None, Some(peer)).await
}

/// The default: 20 registrations an hour per address; the 21st is 429 in the error
/// shape with `Retry-After`, and creates nothing; other addresses go on.
async fn registrations_are_limited_per_client_address(s: &Subject) {
    let classroom = "203.0.113.80";
    for n in 1..=20 {
        let reply = register_from(&s.app, &format!("student{n}"), classroom).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "registration {n}: {}",
            reply.body
        );
    }
    let refused = register_from(&s.app, "student21", classroom).await;
    assert_eq!(
        (refused.status, &refused.body),
        (StatusCode::TOO_MANY_REQUESTS, &too_many_registrations())
    );
    assert_eq!(
        refused.headers.get("content-type").unwrap(),
        "application/json"
    );
    let wait = retry_after(&refused);
    assert!((3590..=3600).contains(&wait), "Retry-After {wait}");
    assert_eq!(
        login(&s.app, "student21", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "the refused registration created no account"
    );
    let elsewhere = register_from(&s.app, "student21", "198.51.100.80").await;
    assert_eq!(
        elsewhere.status,
        StatusCode::OK,
        "other addresses are not limited"
    );
    let bad = register_from(&s.app, "x", classroom).await;
    assert_eq!(
        bad.status,
        StatusCode::BAD_REQUEST,
        "a body that is not a registration is refused for itself first"
    );
    assert_eq!(
        login(&s.app, "student1", PASSWORD).await.status,
        StatusCode::OK,
        "login is not limited by registrations"
    );
}

/// A 400 is not counted (no bcrypt ran); a 409 is (the hash came before the store
/// found the name taken).
async fn refused_bodies_do_not_count_and_taken_names_do(s: &Subject) {
    let peer = "203.0.113.81";
    for _ in 0..5 {
        let bad = register_with_email_from(&s.app, "ok_name", "not-an-email", peer).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    }
    assert_eq!(
        register_from(&s.app, "alice", peer).await.status,
        StatusCode::OK
    );
    assert_eq!(
        register_from(&s.app, "alice", peer).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        register_from(&s.app, "bob", peer).await.body,
        too_many_registrations()
    );
}

/// Racing registrations from one address each count once: exactly the limit pass.
async fn parallel_registrations_from_one_address_get_at_most_the_limit(s: &Subject) {
    let names: Vec<String> = (0..20).map(|n| format!("racer{n}")).collect();
    let replies = join_all(
        names
            .iter()
            .map(|name| register_from(&s.app, name, "203.0.113.82")),
    )
    .await;
    let passed = with_status(&replies, StatusCode::OK).len();
    let limited = with_status(&replies, StatusCode::TOO_MANY_REQUESTS);
    let statuses: Vec<(StatusCode, &Value)> = replies.iter().map(|r| (r.status, &r.body)).collect();
    // A store call that times out on a loaded machine is a 503 (counted or not, it
    // registers no one); everything else is a success within the limit or a 429.
    let unavailable = with_status(&replies, StatusCode::SERVICE_UNAVAILABLE).len();
    assert!(unavailable <= 2, "{statuses:?}");
    assert_eq!(passed + limited.len() + unavailable, 20, "{statuses:?}");
    assert!(
        passed <= 5,
        "at most the limit were registered: {statuses:?}"
    );
    assert!(limited.len() + unavailable >= 15, "{statuses:?}");
    if unavailable == 0 {
        assert_eq!((passed, limited.len()), (5, 15), "{statuses:?}");
    }
    for reply in limited {
        assert_eq!(reply.body, too_many_registrations());
        assert!((1..=3600).contains(&retry_after(reply)));
    }
}

async fn a_registration_limit_ends_when_its_window_does(s: &Subject) {
    let peer = "203.0.113.83";
    assert_eq!(
        register_from(&s.app, "first", peer).await.status,
        StatusCode::OK
    );
    let limited = register_from(&s.app, "second", peer).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let wait = retry_after(&limited);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let after = register_from(&s.app, "second", peer).await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
}

async fn a_limited_registration_does_not_run_bcrypt(s: &Subject) {
    let peer = "203.0.113.84";
    assert_refusals_skip_bcrypt(
        (register_from(&s.app, "hashed", peer), StatusCode::OK),
        async |n| register_from(&s.app, &format!("limited{n}"), peer).await,
    )
    .await;
}

/// A wrong-password login from `peer`, through a proxy that says it is for `forwarded`.
async fn wrong_login_via(app: &Router, peer: &str, forwarded: Option<&str>) -> StatusCode {
    let mut request = Request::post("/login").header("content-type", "application/json");
    if let Some(client) = forwarded {
        request = request.header("x-forwarded-for", client);
    }
    let mut request = request
        .body(Body::from(
            json!({"username": "someone", "password": "wrong-password"}).to_string(),
        ))
        .unwrap();
    let addr: SocketAddr = format!("{peer}:40000").parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(addr));
    send(app, request).await.status
}

/// Where a login comes from: the peer, and the client it forwards for (if any).
type Via<'a> = (&'a str, Option<&'a str>);

/// Wrong-password logins via each of `checked`, each answered 401 (within the limit),
/// then one via `limited`, answered 429 (`why`).
async fn assert_limit_reached(app: &Router, checked: &[Via<'_>], limited: Via<'_>, why: &str) {
    for &(peer, forwarded) in checked {
        assert_eq!(
            wrong_login_via(app, peer, forwarded).await,
            StatusCode::UNAUTHORIZED,
            "from {peer} for {forwarded:?}"
        );
    }
    let (peer, forwarded) = limited;
    assert_eq!(
        wrong_login_via(app, peer, forwarded).await,
        StatusCode::TOO_MANY_REQUESTS,
        "from {peer} for {forwarded:?}: {why}"
    );
}

/// Wrong-password logins from loopback, each forwarded for another of the `forged`
/// clients, with a limit of two per address: the third is limited (`why`), as all
/// three count under loopback's own address.
async fn assert_forged_addresses_count_as_loopback(app: &Router, forged: [&str; 3], why: &str) {
    let loopback = "127.0.0.1";
    let checked = [(loopback, Some(forged[0])), (loopback, Some(forged[1]))];
    assert_limit_reached(app, &checked, (loopback, Some(forged[2])), why).await;
}

/// A loopback peer is no proxy unless configured: an `ssh -L` or a port forward
/// connects from loopback too, and must not pick the address it is counted under.
async fn forwarded_addresses_count_only_from_a_trusted_proxy(s: &Subject) {
    assert_forged_addresses_count_as_loopback(
        &s.app,
        ["203.0.113.40", "203.0.113.41", "203.0.113.42"],
        "every forged address counted under the peer's own",
    )
    .await;

    let behind_proxies = [
        ("LOGIN_MAX_FAILURES_PER_IP", "2"),
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
    ];
    s.backend
        .run(&behind_proxies, async |s| {
            let client = Some("203.0.113.43");
            assert_limit_reached(
                &s.app,
                &[("10.1.1.1", client), ("10.1.1.1", client)],
                ("10.2.2.2", client),
                "the client a trusted proxy names is counted, through any of them",
            )
            .await;
            assert_eq!(
                wrong_login_via(&s.app, "10.1.1.1", Some("203.0.113.44")).await,
                StatusCode::UNAUTHORIZED,
                "another client behind the proxy"
            );
            assert_forged_addresses_count_as_loopback(
                &s.app,
                ["203.0.113.45", "203.0.113.46", "203.0.113.47"],
                "a peer outside TRUSTED_PROXIES is counted as itself",
            )
            .await;
        })
        .await;
}

/// One IPv6 client owns at least a /64 and picks addresses in it at will: the limit
/// counts the /64. An IPv4-mapped address is its IPv4 address.
async fn ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4(s: &Subject) {
    assert_limit_reached(
        &s.app,
        &[
            ("[2001:db8:1:2::1]", None),
            ("[2001:db8:1:2:ffff:ffff:ffff:fffe]", None),
        ],
        ("[2001:db8:1:2:abcd::9]", None),
        "a third address of the same /64",
    )
    .await;
    assert_eq!(
        wrong_login_via(&s.app, "[2001:db8:1:3::1]", None).await,
        StatusCode::UNAUTHORIZED,
        "the next /64 is someone else"
    );
    let mapped = "[::ffff:203.0.113.48]";
    assert_limit_reached(
        &s.app,
        &[(mapped, None), ("203.0.113.48", None)],
        (mapped, None),
        "mapped or not, one IPv4 address",
    )
    .await;
    if let Some(tables) = &s.tables {
        let items = tables.security_items().await.join("\n");
        assert!(items.contains("ATTEMPTS#IP#2001:db8:1:2::"), "{items}");
        assert!(items.contains("ATTEMPTS#IP#203.0.113.48"), "{items}");
        assert!(!items.contains("::ffff:"), "{items}");
    }
}

fn busy() -> Value {
    error(503, "Too many password checks in progress, try again later")
}

/// Twenty wrong passwords at once from one address, within its limit, with one bcrypt
/// slot and a queue of a millisecond: those that find the slot taken are answered 503
/// with `Retry-After` at once, without bcrypt, and give their attempt back (to the
/// username and the address); only the checked ones count.
async fn logins_past_the_bcrypt_slots_are_shed_and_count_nothing(s: &Subject) {
    let attacker = "203.0.113.60";
    let replies = twenty_guesses_at_once(&s.app, Some(attacker)).await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let checked = with_status(&replies, StatusCode::UNAUTHORIZED).len();
    let shed = with_status(&replies, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(checked + shed.len(), 20, "{statuses:?}");
    assert!(checked >= 1, "{statuses:?}");
    assert!(
        !shed.is_empty(),
        "one slot cannot check twenty at once: {statuses:?}"
    );
    for reply in &shed {
        assert_eq!(reply.body, busy());
        assert_eq!(reply.headers["retry-after"], "1");
    }
    // 20 attempts allowed per window: the shed ones were given back, so exactly
    // 20 - checked more are checked, one at a time, before the limit refuses.
    for n in checked..20 {
        let reply = login_from(&s.app, "victim", "wrong-again", attacker).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {n}");
    }
    let reply = login_from(&s.app, "victim", "wrong-again", attacker).await;
    assert_eq!(
        (reply.status, reply.body),
        (StatusCode::TOO_MANY_REQUESTS, locked_out())
    );
}

/// Attempts count the moment they arrive, before they wait for bcrypt: with the
/// address's limit at 3 and one slow bcrypt slot, of eight parallel attempts three are
/// checked and five refused with 429 while those are still in flight.
async fn attempts_in_flight_count_against_the_address(s: &Subject) {
    let replies = join_all((0..8).map(|i| {
        call(
            &s.app,
            "/login",
            Some(json!({"username": format!("user{i}"), "password": "wrong-password"})),
            None,
            Some("203.0.113.61"),
        )
    }))
    .await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.status).collect();
    let count = |status| with_status(&replies, status).len();
    assert_eq!(count(StatusCode::UNAUTHORIZED), 3, "{statuses:?}");
    assert_eq!(count(StatusCode::TOO_MANY_REQUESTS), 5, "{statuses:?}");
}

/// On DynamoDB the count is one `REGISTER#<address>` item in the security table,
/// expiring by TTL at the end of its window.
async fn the_registration_count_is_one_item_per_address(s: &Subject) {
    for name in ["carol", "dave"] {
        assert_eq!(
            register_from(&s.app, name, "203.0.113.85").await.status,
            StatusCode::OK
        );
    }
    let tables = s.tables.as_ref().expect("a DynamoDB subject");
    let items = tables.security_items().await;
    let counters: Vec<&String> = items
        .iter()
        .filter(|i| i.contains("REGISTER#203.0.113.85"))
        .collect();
    assert_eq!(counters.len(), 1, "{items:?}");
    assert!(counters[0].contains("attempts"), "{}", counters[0]);
    assert!(counters[0].contains("expires_at"), "{}", counters[0]);
}

#[tokio::test]
async fn on_dynamodb_the_registration_count_is_one_item_per_address() {
    Backend::Dynamodb
        .run(&[], the_registration_count_is_one_item_per_address)
        .await;
}

/// Only the SHA-256 of a refresh token reaches the table.
async fn the_table_holds_refresh_token_hashes_never_tokens(s: &Subject) {
    let session = signed_up(&s.app, "john_doe").await;
    let token = session["refresh_token"].as_str().unwrap();
    let digest: String = Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let tables = s.tables.as_ref().expect("a DynamoDB subject");
    let items = tables.security_items().await.join("\n");
    assert!(!items.contains(token), "{items}");
    assert!(items.contains(&format!("REFRESH#{digest}")), "{items}");
}

#[tokio::test]
async fn on_dynamodb_the_table_holds_refresh_token_hashes_never_tokens() {
    Backend::Dynamodb
        .run(&[], the_table_holds_refresh_token_hashes_never_tokens)
        .await;
}

/// Each `test(settings)` as two tests, `memory::test` and `dynamodb::test`, each on a
/// fresh subject configured with `settings` on top of the test defaults.
macro_rules! on_both_stores {
    ($($test:ident($settings:expr)),+ $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::Backend::Memory.run($settings, super::$test).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::Backend::Dynamodb.run($settings, super::$test).await;
                }
            )+
        }
    };
}

on_both_stores! {
    login_answers_a_refresh_token_that_refresh_rotates(&[]),
    a_reused_refresh_token_revokes_its_whole_family(&[("REFRESH_REUSE_INTERVAL_SECS", "0")]),
    a_retried_refresh_within_the_reuse_interval_keeps_the_session(&[]),
    unknown_and_malformed_refresh_tokens_are_refused(&[]),
    logout_ends_the_whole_session_everywhere_auth_checks_it(&[]),
    logout_with_a_refresh_token_ends_its_family(&[]),
    logout_refuses_another_users_refresh_token_and_revokes_nothing(&[]),
    logout_without_a_usable_bearer_token_is_refused(&[]),
    twenty_parallel_wrong_passwords_get_at_most_the_limit_of_401s(&[]),
    failures_are_limited_per_client_address_too(&[("LOGIN_MAX_FAILURES_PER_IP", "3")]),
    a_lockout_ends_when_its_window_does(&[
        ("LOGIN_MAX_FAILURES_PER_USER", "2"),
        ("LOGIN_FAILURE_WINDOW_SECS", "2"),
    ]),
    a_successful_login_resets_the_username_counter(&[("LOGIN_MAX_FAILURES_PER_USER", "3")]),
    a_locked_out_login_does_not_run_bcrypt(&[
        ("BCRYPT_COST", "10"),
        ("LOGIN_MAX_FAILURES_PER_USER", "1"),
    ]),
    registrations_are_limited_per_client_address(&[]),
    refused_bodies_do_not_count_and_taken_names_do(&[("REGISTER_MAX_PER_IP", "2")]),
    parallel_registrations_from_one_address_get_at_most_the_limit(&[("REGISTER_MAX_PER_IP", "5")]),
    a_registration_limit_ends_when_its_window_does(&[
        ("REGISTER_MAX_PER_IP", "1"),
        ("REGISTER_WINDOW_SECS", "2"),
    ]),
    a_limited_registration_does_not_run_bcrypt(&[
        ("BCRYPT_COST", "10"),
        ("REGISTER_MAX_PER_IP", "1"),
    ]),
    forwarded_addresses_count_only_from_a_trusted_proxy(&[("LOGIN_MAX_FAILURES_PER_IP", "2")]),
    ipv6_clients_are_limited_per_64_and_mapped_ipv4_as_ipv4(&[("LOGIN_MAX_FAILURES_PER_IP", "2")]),
    logins_past_the_bcrypt_slots_are_shed_and_count_nothing(&[
        ("BCRYPT_COST", "8"),
        ("BCRYPT_CONCURRENCY", "1"),
        ("BCRYPT_QUEUE_MS", "1"),
        ("LOGIN_MAX_FAILURES_PER_USER", "20"),
        ("LOGIN_MAX_FAILURES_PER_IP", "20"),
    ]),
    attempts_in_flight_count_against_the_address(&[
        ("BCRYPT_COST", "10"),
        ("BCRYPT_CONCURRENCY", "1"),
        ("LOGIN_MAX_FAILURES_PER_IP", "3"),
    ]),
}

/// After `BCRYPT_COST` changes, a successful login stores the password hashed at the new
/// cost (both copies of the account, conditionally), without bumping the password
/// generation or ending a session; the old and the new login keep working.
async fn a_login_rehashes_a_password_hashed_at_another_cost(
    stores: stores::Stores,
    base: auth::Config,
) {
    use domain::Username;

    let at_cost = |cost: u32| {
        let mut config = base.clone();
        config.bcrypt_cost = cost;
        auth::router(auth::AppState::new(&stores, tokens(), &config))
    };
    let (before, after) = (at_cost(4), at_cost(5));
    let session = signed_up(&before, "john_doe").await;
    let name = Username::parse("john_doe").unwrap();
    let stored = || async {
        stores
            .accounts
            .find_by_username(&name)
            .await
            .unwrap()
            .unwrap()
    };
    let old = stored().await;
    assert!(old.password_hash.starts_with("$2b$04$"));

    let relogin = login(&after, "john_doe", PASSWORD).await;
    assert_eq!(relogin.status, StatusCode::OK, "{}", relogin.body);
    let new = stored().await;
    assert!(
        new.password_hash.starts_with("$2b$05$"),
        "rehashed at the new cost"
    );
    assert!(bcrypt::verify(PASSWORD, &new.password_hash).unwrap());
    assert_eq!(new.generation, old.generation, "no new password generation");
    assert_eq!(
        validate(&after, &session["token"]).await.status,
        StatusCode::OK,
        "the session of the login before lives on"
    );
    assert_eq!(
        refresh(&after, &session["refresh_token"]).await.status,
        StatusCode::OK
    );
    assert_eq!(
        login(&after, "john_doe", PASSWORD).await.status,
        StatusCode::OK
    );
    assert_eq!(
        stored().await.password_hash,
        new.password_hash,
        "at the current cost already: no second rehash"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_rehashes_a_password_hashed_at_another_cost_in_memory() {
    a_login_rehashes_a_password_hashed_at_another_cost(stores::Stores::memory(), config(&[])).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_rehashes_a_password_hashed_at_another_cost_on_dynamodb() {
    let Some(tables) = TempTables::create().await else {
        return;
    };
    let mut config: auth::Config = tables.config();
    config.tokens.secret = Some(Secret::new(SECRET.into()).unwrap());
    a_login_rehashes_a_password_hashed_at_another_cost(tables.stores().await, config).await;
    tables.delete().await;
}
