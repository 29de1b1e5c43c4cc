//! Downstream faults: dead, silent and truncating services become JSON errors in
//! bounded time, never a hang or a text page.

use std::time::{Duration, Instant};

use axum::response::IntoResponse;

use testkit::error;
use testkit::http::*;

use crate::support::{gateway, health};

const TIMEOUTS: [(&str, &str); 2] = [("CONNECT_TIMEOUT_MS", "200"), ("REQUEST_TIMEOUT_MS", "500")];
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The body of every POST here: a login's.
const LOGIN: &str = r#"{"username":"alice","password":"securePassword123"}"#;

/// `method path` at `url`, a POST with [`LOGIN`]: the status and JSON body of an answer
/// that has an `X-Request-Id`, and how long it took.
async fn call(url: &str, method: &str, path: &str) -> (u16, serde_json::Value, Duration) {
    let started = Instant::now();
    let url = format!("{url}{path}");
    let response = if method == "POST" {
        post_json(&url, LOGIN).await
    } else {
        fetch(method, &url, &[]).await
    };
    let (status, headers, body) = read(response).await;
    assert!(headers.contains_key("x-request-id"));
    (status, body, started.elapsed())
}

/// The gateway on a free port with both services at `downstream` and short timeouts.
async fn gateway_to(downstream: &str) -> String {
    serve(gateway(downstream, downstream, &TIMEOUTS)).await
}

/// [`call`]s `method path` at `url`, asserts the JSON error `status` `message`, and
/// returns how long the answer took.
async fn expect_error(url: &str, method: &str, path: &str, status: u16, message: &str) -> Duration {
    let (got, body, took) = call(url, method, path).await;
    assert_eq!(
        (got, body),
        (status, error(status, message)),
        "{method} {path}"
    );
    took
}

#[tokio::test]
async fn a_dead_downstream_is_a_503_naming_the_service_at_once() {
    let url = gateway_to(&dead_url().await).await;
    for (method, path, message) in [
        ("POST", "/api/register", "Auth service unavailable"),
        ("POST", "/api/login", "Auth service unavailable"),
        ("POST", "/api/validate", "Auth service unavailable"),
        ("GET", "/api/users", "User service unavailable"),
        ("GET", "/api/users/u1", "User service unavailable"),
        ("DELETE", "/api/users/u1", "User service unavailable"),
    ] {
        let took = expect_error(&url, method, path, 503, message).await;
        assert!(took < REQUEST_TIMEOUT, "{method} {path} took {took:?}");
    }
}

#[tokio::test]
async fn a_downstream_that_never_answers_is_a_503_after_the_request_timeout() {
    let url = gateway_to(&silent_url().await).await;
    expect_unavailable_at_the_timeout(&url, "/api/users", 4).await;
}

/// Asserts that a login and a GET of `users_path` through `url` each end in their
/// service's 503 once the request timeout has passed, and before `most` times it.
async fn expect_unavailable_at_the_timeout(url: &str, users_path: &str, most: u32) {
    for (method, path, message) in [
        ("POST", "/api/login", "Auth service unavailable"),
        ("GET", users_path, "User service unavailable"),
    ] {
        let took = expect_error(url, method, path, 503, message).await;
        assert!(
            took >= REQUEST_TIMEOUT && took < REQUEST_TIMEOUT * most,
            "{method} {path} took {took:?}"
        );
    }
}

#[tokio::test]
async fn silent_downstreams_do_not_hold_up_concurrent_requests() {
    let url = gateway_to(&silent_url().await).await;
    let started = Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                expect_error(&url, "GET", "/api/users", 503, "User service unavailable").await
            })
        })
        .collect();
    for handle in calls {
        handle.await.unwrap();
    }
    let took = started.elapsed();
    assert!(
        took < REQUEST_TIMEOUT * 4,
        "8 concurrent calls took {took:?}"
    );
}

#[tokio::test]
async fn a_downstream_that_cuts_its_answer_short_is_a_502_json() {
    let url = gateway_to(&truncating_url().await).await;
    for (method, path) in [("POST", "/api/register"), ("GET", "/api/users/u1")] {
        let took = expect_error(&url, method, path, 502, "Bad gateway").await;
        assert!(took < REQUEST_TIMEOUT, "{method} {path} took {took:?}");
    }
}

#[tokio::test]
async fn the_gateway_recovers_when_a_dead_downstream_comes_back() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let users = format!("http://{addr}");
    let url = serve(gateway(&dead_url().await, &users, &TIMEOUTS)).await;
    let (status, _, _) = call(&url, "GET", "/api/users").await;
    assert_eq!(status, 503);

    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let app = axum::Router::new().fallback(|| async { axum::Json(serde_json::json!([])) });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (status, body, _) = call(&url, "GET", "/api/users").await;
    assert_eq!((status, body), (200, serde_json::json!([])));
}

/// A downstream that waits `delay` before answering 200 `{"slow": true}`, or, with
/// `dribble`, sends its headers at once and then its body a byte every `delay`.
async fn slow_url(delay: Duration, dribble: bool) -> String {
    let app = axum::Router::new().fallback(move || async move {
        if !dribble {
            tokio::time::sleep(delay).await;
            return axum::Json(serde_json::json!({"slow": true})).into_response();
        }
        let bytes = futures::stream::unfold(0u8, move |n| async move {
            tokio::time::sleep(delay).await;
            (n < 100).then(|| (Ok::<_, std::io::Error>(vec![b' ']), n + 1))
        });
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(bytes))
            .unwrap()
    });
    serve(app).await
}

#[tokio::test]
async fn a_downstream_slower_than_the_request_timeout_is_a_503_at_the_timeout() {
    // 5 s unless the request timeout cuts it off; the bound leaves room for load.
    let url = gateway_to(&slow_url(REQUEST_TIMEOUT * 10, false).await).await;
    expect_unavailable_at_the_timeout(&url, "/api/users/u1", 6).await;
}

#[tokio::test]
async fn a_downstream_slow_but_within_the_request_timeout_is_relayed() {
    let url = gateway_to(&slow_url(REQUEST_TIMEOUT / 2, false).await).await;
    for (method, path) in [("POST", "/api/login"), ("GET", "/api/users")] {
        let (status, body, took) = call(&url, method, path).await;
        assert_eq!((status, body), (200, serde_json::json!({"slow": true})));
        assert!(took >= REQUEST_TIMEOUT / 2, "{method} {path} took {took:?}");
    }
}

#[tokio::test]
async fn a_downstream_that_dribbles_its_body_past_the_timeout_is_a_503() {
    // 100 bytes, one every 100 ms: 10 s unless the request timeout cuts it off. The
    // bound leaves room for a loaded machine and is still far below those 10 s.
    let url = gateway_to(&slow_url(Duration::from_millis(100), true).await).await;
    let took = expect_error(&url, "GET", "/api/users", 503, "User service unavailable").await;
    assert!(took < REQUEST_TIMEOUT * 6, "took {took:?}");
}

#[tokio::test]
async fn an_answer_that_claims_json_but_is_not_is_a_502_json() {
    let users = Fake::healthy().await;
    let url = gateway_to(&users.url).await;
    for (status, content_type, body) in [
        (200, "application/json", "<html>proxy error</html>"),
        (
            500,
            "application/json; charset=utf-8",
            "Internal Server Error",
        ),
        (200, "application/json", ""),
        (200, "application/problem+json", "{\"status\":"),
        (404, "application/json", "{\"status\":\"404\"} trailing"),
    ] {
        users.answer(Reply {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
        });
        let (got, answer, _) = call(&url, "GET", "/api/users/u1").await;
        assert_eq!(
            (got, answer),
            (502, error(502, "Bad gateway")),
            "{status} {content_type} {body:?}"
        );
    }
}

#[tokio::test]
async fn json_answers_and_bodiless_ones_still_pass() {
    let users = Fake::healthy().await;
    let url = gateway_to(&users.url).await;
    users.answer(Reply::json(200, serde_json::json!([])));
    let head = fetch("HEAD", &format!("{url}/api/users"), &[]).await;
    assert_eq!(head.status(), 200);
    users.answer(Reply {
        status: 204,
        content_type: "application/json",
        body: String::new(),
        headers: Vec::new(),
    });
    let empty = fetch("DELETE", &format!("{url}/api/users/u1"), &[]).await;
    assert_eq!(empty.status(), 204);
    assert!(empty.bytes().await.unwrap().is_empty());
}

/// A downstream that can be paused (it accepts requests and never answers, like a
/// process under SIGSTOP) and resumed.
async fn pausable() -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let paused = Arc::new(AtomicBool::new(true));
    let flag = paused.clone();
    let app = axum::Router::new().fallback(move || {
        let flag = flag.clone();
        async move {
            if flag.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            axum::Json(serde_json::json!([])).into_response()
        }
    });
    (serve(app).await, paused)
}

#[tokio::test]
async fn a_paused_downstream_opens_its_breaker_and_a_resumed_one_closes_it() {
    use std::sync::atomic::Ordering;
    let (down, paused) = pausable().await;
    let mut settings = TIMEOUTS.to_vec();
    settings.extend([("BREAKER_FAILURES", "3"), ("BREAKER_COOLDOWN_MS", "800")]);
    let url = serve(gateway(&down, &down, &settings)).await;
    let breakers = |url: String| async move { health(&url, "/").await["breakers"].clone() };
    assert_eq!(
        breakers(url.clone()).await,
        serde_json::json!({"auth": "closed", "users": "closed"})
    );

    for _ in 0..3 {
        let (status, _, took) = call(&url, "GET", "/api/users").await;
        assert_eq!(status, 503);
        assert!(took >= REQUEST_TIMEOUT, "a timeout: {took:?}");
    }
    for _ in 0..5 {
        let took = expect_error(&url, "GET", "/api/users", 503, "User service unavailable").await;
        assert!(
            took < Duration::from_millis(100),
            "open: at once, took {took:?}"
        );
    }
    assert_eq!(
        breakers(url.clone()).await,
        serde_json::json!({"auth": "closed", "users": "open"}),
        "one breaker per service"
    );

    paused.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(850)).await;
    assert_eq!(breakers(url.clone()).await["users"], "half-open");
    let (status, body, _) = call(&url, "GET", "/api/users").await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!([])),
        "the probe passes"
    );
    assert_eq!(breakers(url.clone()).await["users"], "closed");
    for _ in 0..5 {
        assert_eq!(call(&url, "GET", "/api/users").await.0, 200);
    }
}

/// A downstream that counts the requests it gets and answers each after `delay`.
async fn counting(delay: Duration) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            axum::Json(serde_json::json!({"status": "ok"})).into_response()
        }
    });
    (serve(app).await, count)
}

#[tokio::test]
async fn a_flood_of_health_checks_probes_each_downstream_once_a_second_at_most() {
    use std::sync::atomic::Ordering;
    let (auth, auth_probes) = counting(Duration::from_millis(50)).await;
    let (users, users_probes) = counting(Duration::from_millis(50)).await;
    let url = serve(gateway(&auth, &users, &TIMEOUTS)).await;
    let started = Instant::now();
    let flood: Vec<_> = (0..100)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { call(&url, "GET", "/").await })
        })
        .collect();
    for answer in flood {
        let (status, body, _) = answer.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(
            body["downstream"],
            serde_json::json!({"auth": "ok", "users": "ok"})
        );
    }
    let flood_took = started.elapsed();
    // 100 concurrent checks, one probe each: the others waited for it or reused it.
    let expected = 1 + usize::from(flood_took >= gateway::PROBE_CACHE);
    assert!(
        auth_probes.load(Ordering::SeqCst) <= expected,
        "{flood_took:?}"
    );
    assert!(users_probes.load(Ordering::SeqCst) <= expected);
    assert!(auth_probes.load(Ordering::SeqCst) >= 1);
    // Once the answer is older than the cache's life, the next check probes again.
    tokio::time::sleep(gateway::PROBE_CACHE + Duration::from_millis(50)).await;
    let before = auth_probes.load(Ordering::SeqCst);
    let (status, _, _) = call(&url, "GET", "/").await;
    assert_eq!(status, 200);
    assert_eq!(auth_probes.load(Ordering::SeqCst), before + 1);
    let (status, _, _) = call(&url, "GET", "/").await;
    assert_eq!(status, 200);
    assert_eq!(auth_probes.load(Ordering::SeqCst), before + 1);
}

/// A load-shedding 503 is auth's answer, not auth failing to answer: relayed with its
/// `Retry-After`, and however many there are, the breaker stays closed and every
/// request still reaches auth.
#[tokio::test]
async fn load_shed_by_auth_is_relayed_and_never_opens_its_breaker() {
    let auth = Fake::start(
        Reply::json(
            503,
            error(503, "Too many password checks in progress, try again later"),
        )
        .with_header("retry-after", "1"),
    )
    .await;
    let mut settings = TIMEOUTS.to_vec();
    settings.extend([("BREAKER_FAILURES", "2")]);
    let url = serve(gateway(&auth.url, &auth.url, &settings)).await;
    for _ in 0..6 {
        let (status, headers, body) =
            read(post_json(&format!("{url}/api/login"), LOGIN).await).await;
        assert_eq!(
            (status, body),
            (
                503,
                error(503, "Too many password checks in progress, try again later")
            )
        );
        assert_eq!(headers["retry-after"], "1");
    }
    let logins = auth
        .received()
        .iter()
        .filter(|r| r.path == "/login")
        .count();
    assert_eq!(logins, 6, "no request refused by the gateway");
    let (_, _, health) = read(fetch("GET", &format!("{url}/"), &[]).await).await;
    assert_eq!(health["breakers"]["auth"], "closed");
}
