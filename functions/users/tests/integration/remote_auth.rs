//! `AUTH_MODE=remote`: tokens checked by a real auth over HTTP, valid answers cached
//! briefly and never past expiry, a 503 when auth is down, slow or broken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use tokio::net::TcpListener;

use settings::HttpClientConfig;
use stores::Stores;
use stores::memory::MemoryProfileStore;
use testkit::*;
use users::Authenticator;

use crate::support::*;

/// A real auth function sharing the tests' secret, counting the `/validate` calls.
/// Also the session store it checks, where the tests' tokens must have their sessions.
async fn counted_auth() -> (String, Arc<AtomicUsize>, Sessions) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let profiles = Arc::new(MemoryProfileStore::new());
    let sessions = sessions(&profiles);
    let stores = Stores {
        profiles,
        sessions: sessions.1.clone(),
        checks: sessions.1.clone(),
        ..Stores::memory()
    };
    let app = auth::router(auth::AppState::new(&stores, tokens(), &config(&[]))).layer(
        middleware::from_fn(move |req: axum::extract::Request, next: Next| {
            if req.uri().path().ends_with("/validate") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            next.run(req)
        }),
    );
    (serve(app).await, calls, sessions)
}

/// A users app asking auth at `auth_url`, waiting `request_timeout` for an answer.
fn remote_app(auth_url: &str, request_timeout: Duration) -> TestApp {
    TestApp::with_auth(remote(auth_url, request_timeout))
}

/// A users app asking a [`counted_auth`] (waiting up to 5 s), minting its tokens'
/// sessions where that auth checks them; and the count of its `/validate` calls.
async fn app_asking_counted_auth() -> (TestApp, Arc<AtomicUsize>) {
    let (url, calls, sessions) = counted_auth().await;
    let auth = remote(&url, Duration::from_secs(5));
    let app = TestApp::with_auth_and_sessions(auth, sessions, Arc::new(MemoryProfileStore::new()));
    (app, calls)
}

#[tokio::test]
async fn a_token_auth_accepts_is_accepted_and_auth_says_who_it_is() {
    let (app, calls) = app_asking_counted_auth().await;
    let created = app.create(ALICE, "alice").await;
    assert_eq!(created["user_id"], ALICE);
    let bob = app.token(BOB, "bob");
    let refused = app.delete(&format!("/users/{ALICE}"), &bob).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_auth_refuses_is_401_and_never_cached() {
    let (app, calls) = app_asking_counted_auth().await;
    let expired = app.expired_token(ALICE);
    for token in [expired.as_str(), "garbage", "a.b.c", expired.as_str()] {
        let reply = app.get("/users", token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(reply.body, error(401, "Invalid or expired token"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn header_mistakes_are_refused_without_asking_auth() {
    let (app, calls) = app_asking_counted_auth().await;
    let reply = app.call(Method::GET, "/users", None, None).await;
    assert_eq!(reply.body, error(401, "Missing authorization header"));
    let huge = "x".repeat(10_000);
    let reply = app.get("/users", &huge).await;
    assert_eq!(reply.body, error(401, "Invalid or expired token"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_valid_answer_is_reused_for_the_same_token_only() {
    let (app, calls) = app_asking_counted_auth().await;
    let alice = app.token(ALICE, "alice");
    for _ in 0..5 {
        let reply = app.get("/users", &alice).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let bob = app.token(BOB, "bob");
    app.get("/users", &bob).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_cached_answer_never_outlives_the_token() {
    let (app, calls) = app_asking_counted_auth().await;
    let now = chrono::Utc::now().timestamp();
    let short = app.token_expiring_at(ALICE, "alice", now + 2);
    for _ in 0..2 {
        let reply = app.get("/users", &short).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let reply = app.get("/users", &short).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, error(401, "Invalid or expired token"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_dead_auth_service_is_503_at_once() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = remote_app(&format!("http://127.0.0.1:{port}"), Duration::from_secs(5));
    let token = app.token(ALICE, "alice");
    let start = Instant::now();
    let reply = app.get("/users", &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, error(503, "Auth service unavailable"));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn an_auth_service_that_never_answers_is_503_after_the_request_timeout() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let app = remote_app(&format!("http://{addr}"), Duration::from_millis(300));
    let token = app.token(ALICE, "alice");
    let start = Instant::now();
    let reply = app.get("/users", &token).await;
    let elapsed = start.elapsed();
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.body, error(503, "Auth service unavailable"));
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    drop(silent);
}

#[tokio::test]
async fn after_a_run_of_timeouts_the_breaker_answers_503_without_asking_auth() {
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let auth = Authenticator::remote_with(
        &format!("http://{addr}").parse().unwrap(),
        &HttpClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(300),
        },
        outbound::breaker::BreakerConfig {
            failures: 2,
            cooldown: Duration::from_secs(30),
        },
    )
    .unwrap();
    let app = TestApp::with_auth(auth);
    let token = app.token(ALICE, "alice");
    for attempt in 0..4 {
        let start = Instant::now();
        let reply = app.get("/users", &token).await;
        let elapsed = start.elapsed();
        assert_eq!(reply.body, error(503, "Auth service unavailable"));
        if attempt < 2 {
            assert!(
                elapsed >= Duration::from_millis(250),
                "timed out: {elapsed:?}"
            );
        } else {
            assert!(elapsed < Duration::from_millis(100), "open: {elapsed:?}");
        }
    }
    drop(silent);
}

#[tokio::test]
async fn an_auth_service_answering_nonsense_is_503() {
    use axum::routing::post;
    let cases: Vec<(&str, Router)> = vec![
        (
            "500",
            Router::new().route(
                "/validate",
                post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
            ),
        ),
        (
            "not JSON",
            Router::new().route("/validate", post(|| async { "hello" })),
        ),
        (
            "not a UUID",
            Router::new().route(
                "/validate",
                post(|| async {
                    axum::Json(serde_json::json!({"valid": true, "user_id": "1", "username": "x"}))
                }),
            ),
        ),
    ];
    for (what, fake) in cases {
        let app = remote_app(&serve(fake).await, Duration::from_secs(5));
        let token = app.token(ALICE, "alice");
        let reply = app.get("/users", &token).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert_eq!(reply.body, error(503, "Auth service unavailable"), "{what}");
    }
}

#[tokio::test]
async fn an_auth_answer_of_valid_false_is_401() {
    use axum::routing::post;
    let fake = Router::new().route(
        "/validate",
        post(|| async {
            axum::Json(serde_json::json!({"valid": false, "user_id": ALICE, "username": "alice"}))
        }),
    );
    let app = remote_app(&serve(fake).await, Duration::from_secs(5));
    let token = app.token(ALICE, "alice");
    let reply = app.get("/users", &token).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, error(401, "Invalid or expired token"));
}
