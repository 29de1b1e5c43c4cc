//! `AUTH_MODE=remote`: tokens checked by a real auth over HTTP, valid answers cached
//! briefly and never past expiry, a 503 when auth is down, slow or broken.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use tokio::net::TcpListener;
use uuid::Uuid;

use settings::HttpClientConfig;
use stores::Stores;
use stores::memory::MemoryProfileStore;
use testkit::*;
use tokens::Claims;
use users::{AppState, Authenticator};

use crate::support::*;

/// Serves `app` on a free loopback port for the rest of the test.
async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

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

fn remote_app(auth_url: &str, request_timeout: Duration) -> TestApp {
    let store = Arc::new(MemoryProfileStore::new());
    remote_app_with(auth_url, request_timeout, sessions(&store), store)
}

/// A users app asking auth at `auth_url`, minting its tokens' sessions in `sessions`.
fn remote_app_with(
    auth_url: &str,
    request_timeout: Duration,
    (accounts, sessions): Sessions,
    store: Arc<MemoryProfileStore>,
) -> TestApp {
    let auth = Authenticator::remote(
        &auth_url.parse().unwrap(),
        &HttpClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout,
        },
    )
    .unwrap();
    TestApp {
        router: users::router(AppState::new(store.clone(), auth)),
        accounts,
        sessions,
        store,
        tokens: tokens(),
    }
}

#[tokio::test]
async fn a_token_auth_accepts_is_accepted_and_auth_says_who_it_is() {
    let (url, calls, sessions) = counted_auth().await;
    let app = remote_app_with(
        &url,
        Duration::from_secs(5),
        sessions,
        Arc::new(MemoryProfileStore::new()),
    );
    let created = app.create(ALICE, "alice").await;
    assert_eq!(created["user_id"], ALICE);
    let bob = app.token(BOB, "bob");
    let refused = app
        .call(Method::DELETE, &format!("/users/{ALICE}"), Some(&bob), None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_token_auth_refuses_is_401_and_never_cached() {
    let (url, calls, sessions) = counted_auth().await;
    let app = remote_app_with(
        &url,
        Duration::from_secs(5),
        sessions,
        Arc::new(MemoryProfileStore::new()),
    );
    let expired = app.expired_token(ALICE);
    for token in [expired.as_str(), "garbage", "a.b.c", expired.as_str()] {
        let reply = app.call(Method::GET, "/users", Some(token), None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(reply.body, error(401, "Invalid or expired token"));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn header_mistakes_are_refused_without_asking_auth() {
    let (url, calls, sessions) = counted_auth().await;
    let app = remote_app_with(
        &url,
        Duration::from_secs(5),
        sessions,
        Arc::new(MemoryProfileStore::new()),
    );
    let reply = app.call(Method::GET, "/users", None, None).await;
    assert_eq!(reply.body, error(401, "Missing authorization header"));
    let huge = "x".repeat(10_000);
    let reply = app.call(Method::GET, "/users", Some(&huge), None).await;
    assert_eq!(reply.body, error(401, "Invalid or expired token"));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_valid_answer_is_reused_for_the_same_token_only() {
    let (url, calls, sessions) = counted_auth().await;
    let app = remote_app_with(
        &url,
        Duration::from_secs(5),
        sessions,
        Arc::new(MemoryProfileStore::new()),
    );
    let alice = app.token(ALICE, "alice");
    for _ in 0..5 {
        let reply = app.call(Method::GET, "/users", Some(&alice), None).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let bob = app.token(BOB, "bob");
    app.call(Method::GET, "/users", Some(&bob), None).await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_cached_answer_never_outlives_the_token() {
    let (url, calls, sessions) = counted_auth().await;
    let app = remote_app_with(
        &url,
        Duration::from_secs(5),
        sessions,
        Arc::new(MemoryProfileStore::new()),
    );
    let now = chrono::Utc::now().timestamp();
    let short = app
        .tokens
        .sign(&Claims {
            sub: ALICE.into(),
            username: "alice".into(),
            iat: now,
            exp: now + 2,
            jti: Uuid::new_v4().to_string(),
            sid: app
                .session(Uuid::parse_str(ALICE).unwrap(), "alice", 3600)
                .to_string(),
            iss: tokens::DEFAULT_ISSUER.into(),
            aud: tokens::DEFAULT_AUDIENCE.into(),
        })
        .unwrap();
    for _ in 0..2 {
        let reply = app.call(Method::GET, "/users", Some(&short), None).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let reply = app.call(Method::GET, "/users", Some(&short), None).await;
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
    let reply = app.call(Method::GET, "/users", Some(&token), None).await;
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
    let reply = app.call(Method::GET, "/users", Some(&token), None).await;
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
    let store = Arc::new(MemoryProfileStore::new());
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
    let (accounts, sessions) = sessions(&store);
    let app = TestApp {
        router: users::router(AppState::new(store.clone(), auth)),
        accounts,
        sessions,
        store,
        tokens: tokens(),
    };
    let token = app.token(ALICE, "alice");
    for attempt in 0..4 {
        let start = Instant::now();
        let reply = app.call(Method::GET, "/users", Some(&token), None).await;
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
        let reply = app.call(Method::GET, "/users", Some(&token), None).await;
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
    let reply = app.call(Method::GET, "/users", Some(&token), None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.body, error(401, "Invalid or expired token"));
}
