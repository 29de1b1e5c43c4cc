//! Forwarding over real HTTP to stand-in services: what goes down, what comes back.

use serde_json::{Value, json};

use testkit::http::*;
use testkit::{config, error, try_config};

use crate::support::{assert_spec_health_with_both_services_up, gateway, gateway_with, health};

/// The gateway on a free port in front of two fakes; returns (gateway URL, auth, users).
async fn setup() -> (String, Fake, Fake) {
    let auth = Fake::healthy().await;
    let users = Fake::healthy().await;
    let url = serve(gateway(&auth.url, &users.url, &[])).await;
    (url, auth, users)
}

/// A request to forward: method, path under `/api` (with any query), JSON body if any.
type Case = (&'static str, String, Option<Value>);

/// Sends `case` to the gateway at `url` with `headers`, asserts a 200 and that `fake`
/// got it last with the same method, path without `/api`, query and body; returns
/// what `fake` got.
async fn forward(url: &str, fake: &Fake, case: &Case, headers: &[(&str, &str)]) -> Received {
    let (method, path, body) = case;
    let mut request = client().request(method.parse().unwrap(), format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{method} {path}");
    let got = fake.received().pop().unwrap();
    assert_eq!(got.method, *method);
    let forwarded = path.strip_prefix("/api").unwrap();
    let (want_path, want_query) = match forwarded.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (forwarded, None),
    };
    assert_eq!(got.path, want_path);
    assert_eq!(got.query.as_deref(), want_query);
    match body {
        Some(body) => assert_eq!(got.json(), *body, "{method} {path}"),
        None => assert!(got.body.is_empty(), "{method} {path} sent {:?}", got.body),
    }
    got
}

/// Asserts that `response` is the JSON error `status` `message` and carries an
/// `X-Request-Id`; `what` names the request.
async fn assert_error_with_request_id(
    response: reqwest::Response,
    status: u16,
    message: &str,
    what: &str,
) {
    let (got, headers, body) = read(response).await;
    assert_eq!((got, body), (status, error(status, message)), "{what}");
    assert!(headers.contains_key("x-request-id"), "{what}");
}

/// The `X-Request-Id` the gateway answered with.
fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn health_is_the_spec_body_in_the_spec_key_order_plus_downstream_status() {
    let (url, _auth, _users) = setup().await;
    assert_spec_health_with_both_services_up(health(&url, "/").await);
}

#[tokio::test]
async fn health_reports_a_dead_downstream_without_failing_itself() {
    let auth = Fake::healthy().await;
    let url = serve(gateway(&auth.url, &silent_url().await, &[])).await;
    let started = std::time::Instant::now();
    let body = health(&url, "/").await;
    let took = started.elapsed();
    assert_eq!(body["status"], "ok");
    assert_eq!(
        body["downstream"],
        json!({"auth": "ok", "users": "unavailable"})
    );
    assert!(
        took >= gateway::PROBE_TIMEOUT && took < gateway::PROBE_TIMEOUT * 3,
        "probes run with a short timeout, took {took:?}"
    );
}

#[tokio::test]
async fn health_also_answers_at_api() {
    let (url, _auth, _users) = setup().await;
    assert_eq!(health(&url, "/api").await["service"], "gateway-service");
}

#[tokio::test]
async fn auth_routes_go_to_auth_with_method_path_body_and_headers() {
    let (url, auth, users) = setup().await;
    for route in ["register", "login", "validate", "refresh", "logout"] {
        let body = json!({"route": route, "password": "securePassword123"});
        let response = client()
            .post(format!("{url}/api/{route}"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer abc.def.ghi")
            .header("x-request-id", format!("req-{route}"))
            .header("cookie", "session=secret")
            .header("x-custom", "not forwarded")
            .header("x-forwarded-host", "attacker.example")
            .header("x-local-hop-key", "a guess")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let got = auth.received().pop().unwrap();
        assert_eq!(got.method, "POST");
        assert_eq!(got.path, format!("/{route}"));
        assert_eq!(got.json(), body);
        assert_eq!(got.header("content-type"), Some("application/json"));
        assert_eq!(got.header("authorization"), Some("Bearer abc.def.ghi"));
        let expected_id = format!("req-{route}");
        assert_eq!(got.header("x-request-id"), Some(expected_id.as_str()));
        assert_eq!(got.header("cookie"), None);
        assert_eq!(got.header("x-custom"), None);
        assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(got.header("x-forwarded-host"), None, "{route}");
        assert_eq!(got.header("x-local-hop-key"), None, "no key configured");
    }
    assert_eq!(auth.received().len(), 5);
    assert!(users.received().is_empty());
}

#[tokio::test]
async fn account_routes_go_to_auth_with_method_path_body_and_headers() {
    let (url, auth, users) = setup().await;
    let sid = "7d444840-9dc0-11d1-b245-5ffdce74fad2";
    let change = json!({"current_password": "securePassword123",
                        "new_password": "evenMoreSecure456"});
    let deletion = json!({"password": "securePassword123"});
    let cases: [Case; 4] = [
        ("GET", "/api/sessions".into(), None),
        ("DELETE", format!("/api/sessions/{sid}"), None),
        ("POST", "/api/password".into(), Some(change)),
        ("DELETE", "/api/account".into(), Some(deletion)),
    ];
    for (i, case) in cases.iter().enumerate() {
        let expected_id = format!("req-account-{i}");
        let headers = [
            ("authorization", "Bearer abc.def.ghi"),
            ("user-agent", "session-test/1.0"),
            ("cookie", "session=secret"),
            ("x-request-id", expected_id.as_str()),
        ];
        let got = forward(&url, &auth, case, &headers).await;
        assert_eq!(got.header("authorization"), Some("Bearer abc.def.ghi"));
        assert_eq!(got.header("x-request-id"), Some(expected_id.as_str()));
        assert_eq!(got.header("user-agent"), Some("session-test/1.0"));
        assert_eq!(got.header("cookie"), None);
        assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
        if case.2.is_some() {
            assert_eq!(got.header("content-type"), Some("application/json"));
        }
    }
    assert_eq!(auth.received().len(), cases.len());
    assert!(users.received().is_empty());
}

/// The routes of mailed links (issue 33): verification, reset and email change, with
/// and without a bearer token, each body passed on as sent.
#[tokio::test]
async fn mail_routes_go_to_auth_with_method_path_body_and_headers() {
    let (url, auth, users) = setup().await;
    let token = "J1f3Jw0c8m2Xj1zF0Q7mN6yqkHq3YfGZx1l3b3mQk9E";
    let reset = json!({"token": token, "new_password": "evenMoreSecure456"});
    let change = json!({"new_email": "alice@example.org", "password": "securePassword123"});
    // (path, body, whether it carries a bearer token)
    let routes = [
        ("/api/email/verify", Some(json!({"token": token})), false),
        ("/api/email/verify/resend", None, true),
        (
            "/api/password/forgot",
            Some(json!({"email": "alice@example.com"})),
            false,
        ),
        ("/api/password/reset", Some(reset), false),
        ("/api/email", Some(change), true),
        ("/api/email/confirm", Some(json!({"token": token})), false),
    ];
    for (i, (path, body, bearer)) in routes.into_iter().enumerate() {
        let expected_id = format!("req-mail-{i}");
        let mut headers = vec![
            ("cookie", "session=secret"),
            ("x-request-id", expected_id.as_str()),
        ];
        if bearer {
            headers.push(("authorization", "Bearer abc.def.ghi"));
        }
        let sends_body = body.is_some();
        let got = forward(&url, &auth, &("POST", path.into(), body), &headers).await;
        let authorization = bearer.then_some("Bearer abc.def.ghi");
        assert_eq!(got.header("authorization"), authorization, "{path}");
        assert_eq!(got.header("x-request-id"), Some(expected_id.as_str()));
        assert_eq!(got.header("cookie"), None, "{path}");
        // The client's address: auth counts /password/forgot per client.
        assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"), "{path}");
        if sends_body {
            assert_eq!(got.header("content-type"), Some("application/json"));
        }
    }
    assert_eq!(auth.received().len(), 6);
    assert!(users.received().is_empty());
}

#[tokio::test]
async fn user_routes_go_to_users_with_every_method_path_and_query() {
    let (url, auth, users) = setup().await;
    let id = "550e8400-e29b-41d4-a716-446655440000";
    let profile = json!({"user_id": id, "username": "alice", "email": "alice@example.com",
                         "full_name": "Alice Smith", "bio": "Software developer"});
    let update = json!({"bio": "Senior software developer"});
    let one = format!("/api/users/{id}");
    let cases: [Case; 6] = [
        ("GET", "/api/users".into(), None),
        ("GET", "/api/users?limit=2&cursor=abc%3D%3D".into(), None),
        ("POST", "/api/users".into(), Some(profile)),
        ("GET", one.clone(), None),
        ("PUT", one.clone(), Some(update)),
        ("DELETE", one, None),
    ];
    for case in &cases {
        let got = forward(&url, &users, case, &[("authorization", "Bearer token-1")]).await;
        let (method, path, _) = case;
        assert_eq!(got.header("authorization"), Some("Bearer token-1"));
        // The client's address goes to auth only: users reads none.
        assert_eq!(got.header("x-forwarded-for"), None, "{method} {path}");
        assert_eq!(got.header("x-forwarded-host"), None, "{method} {path}");
        assert!(got.header("x-request-id").is_some(), "{method} {path}");
    }
    assert_eq!(users.received().len(), 6);
    assert!(auth.received().is_empty());
}

#[tokio::test]
async fn downstream_status_body_and_content_type_come_back_unchanged() {
    let (url, _auth, users) = setup().await;
    let cases = [
        (
            200,
            json!({"user_id": "u1", "message": "Profile created successfully"}),
        ),
        (401, error(401, "Invalid or expired token")),
        (403, error(403, "You can only modify your own profile")),
        (404, error(404, "User not found")),
        (409, error(409, "User already exists")),
    ];
    for (status, body) in cases {
        users.answer(Reply::json(status, body.clone()));
        let response = fetch("GET", &format!("{url}/api/users/u1"), &[]).await;
        let (got_status, headers, got_body) = read(response).await;
        assert_eq!(got_status, status);
        assert_eq!(got_body, body);
        assert_eq!(headers["content-type"], "application/json");
    }
}

#[tokio::test]
async fn a_non_json_answer_keeps_its_content_type_and_bytes() {
    let (url, _auth, users) = setup().await;
    users.answer(Reply {
        status: 418,
        content_type: "text/plain; charset=utf-8",
        body: "short and stout".into(),
        headers: Vec::new(),
    });
    let response = fetch("GET", &format!("{url}/api/users"), &[]).await;
    assert_eq!(response.status(), 418);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    assert_eq!(response.text().await.unwrap(), "short and stout");
}

#[tokio::test]
async fn the_next_cursor_header_passes_through_and_hop_by_hop_headers_do_not() {
    let (url, _auth, users) = setup().await;
    users.answer(
        Reply::json(200, json!([]))
            .with_header("x-next-cursor", "eyJrIjoiYWxpY2UifQ")
            .with_header("retry-after", "7")
            .with_header("keep-alive", "timeout=5")
            .with_header("x-internal", "yes")
            .with_header("connection", "x-internal"),
    );
    let response = fetch("GET", &format!("{url}/api/users?limit=1"), &[]).await;
    let (status, headers, body) = read(response).await;
    assert_eq!((status, body), (200, json!([])));
    assert_eq!(headers["x-next-cursor"], "eyJrIjoiYWxpY2UifQ");
    assert_eq!(headers["retry-after"], "7");
    assert!(headers.get("keep-alive").is_none());
    assert!(headers.get("x-internal").is_none());
}

#[tokio::test]
async fn a_request_id_is_made_when_missing_and_returned_on_every_answer() {
    let (url, _auth, users) = setup().await;
    let returned = request_id(&fetch("GET", &format!("{url}/api/users"), &[]).await);
    assert!(uuid::Uuid::parse_str(&returned).is_ok(), "{returned}");
    assert_eq!(users.only().header("x-request-id"), Some(returned.as_str()));

    for path in ["/", "/api/nope", "/api/users"] {
        let chosen = [("x-request-id", "client-chosen-42")];
        let response = fetch("GET", &format!("{url}{path}"), &chosen).await;
        assert_eq!(request_id(&response), "client-chosen-42", "{path}");
    }
    let forwarded = users.received().pop().unwrap();
    assert_eq!(forwarded.path, "/users");
    assert_eq!(forwarded.header("x-request-id"), Some("client-chosen-42"));
}

#[tokio::test]
async fn an_unreasonable_client_request_id_is_replaced() {
    let (url, _auth, users) = setup().await;
    let long = "x".repeat(500);
    for bad in [long.as_str(), "has spaces in it", "quote\"d"] {
        let url = format!("{url}/api/users");
        let returned = request_id(&fetch("GET", &url, &[("x-request-id", bad)]).await);
        assert!(
            uuid::Uuid::parse_str(&returned).is_ok(),
            "{bad} -> {returned}"
        );
        let forwarded = users.received().pop().unwrap();
        assert_eq!(forwarded.header("x-request-id"), Some(returned.as_str()));
    }
}

#[tokio::test]
async fn unknown_api_paths_are_a_404_json_without_contacting_anyone() {
    let (url, auth, users) = setup().await;
    for path in [
        "/api/nope",
        "/api/users/a/b",
        "/api/registerx",
        "/api/password/forgotten",
        "/api/email/verify/again",
        "/api/email/x",
        "/nope",
        "/api/",
    ] {
        let response = fetch("GET", &format!("{url}{path}"), &[]).await;
        assert_error_with_request_id(response, 404, "Route not found", path).await;
    }
    assert!(auth.received().is_empty() && users.received().is_empty());
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413_without_contacting_downstream() {
    let (url, auth, users) = setup().await;
    let big = json!({"username": "a".repeat(errors::json::MAX_BODY_BYTES)}).to_string();
    for path in ["/api/register", "/api/users"] {
        let response = post_json(&format!("{url}{path}"), big.clone()).await;
        assert_error_with_request_id(response, 413, "Request body too large", path).await;
    }
    assert!(auth.received().is_empty() && users.received().is_empty());
}

#[tokio::test]
async fn a_body_of_exactly_64_kib_is_forwarded_whole() {
    let (url, auth, _users) = setup().await;
    let limit = errors::json::MAX_BODY_BYTES;
    let body = format!("\"{}\"", "a".repeat(limit - 2));
    assert_eq!(body.len(), limit);
    let response = post_json(&format!("{url}/api/register"), body.clone()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(auth.only().body, body.as_bytes());
}

#[tokio::test]
async fn a_downstream_answer_over_the_cap_is_a_502_json() {
    let (url, _auth, users) = setup().await;
    users.answer(Reply {
        status: 200,
        content_type: "application/json",
        body: format!("\"{}\"", "a".repeat(gateway::MAX_UPSTREAM_BODY_BYTES)),
        headers: Vec::new(),
    });
    let (status, _, body) = read(fetch("GET", &format!("{url}/api/users"), &[]).await).await;
    assert_eq!((status, body), (502, error(502, "Bad gateway")));
}

#[tokio::test]
async fn a_base_url_with_a_path_prefix_keeps_it() {
    let users = Fake::healthy().await;
    let auth = Fake::healthy().await;
    let url = serve(gateway(
        &format!("{}/lambda-url/auth/", auth.url),
        &users.url,
        &[],
    ))
    .await;
    let response = post_json(&format!("{url}/api/login?x=1"), "{}").await;
    assert_eq!(response.status(), 200);
    let got = auth.only();
    assert_eq!(got.path, "/lambda-url/auth/login");
    assert_eq!(got.query.as_deref(), Some("x=1"));
}

#[tokio::test]
async fn bad_service_urls_and_origins_are_refused_at_start_naming_the_variable() {
    for (var, value) in [
        ("AUTH_SERVICE_URL", "localhost:3000"),
        ("AUTH_SERVICE_URL", "ftp://example.com"),
        ("USER_SERVICE_URL", "not a url"),
        ("USER_SERVICE_URL", "http://example.com/?q=1"),
    ] {
        let err = try_config::<gateway::Config>(&[(var, value)])
            .err()
            .unwrap_or_else(|| panic!("{var}={value:?} was accepted"));
        assert!(err.to_string().contains(var), "{err}");
    }
    let var = "CORS_ALLOWED_ORIGINS";
    let err =
        gateway::AppState::from_config(&config(&[(var, "https://ok.example,bad\u{7f}origin")]))
            .err()
            .expect("a bad origin is refused");
    assert!(err.to_string().contains(var), "{err}");
}

/// Paths with a `.` or `..` segment in every spelling the URL parser resolves, on
/// routes that would otherwise be forwarded (and a few that would not).
const DOT_SEGMENT_PATHS: &[&str] = &[
    "/users/..",
    "/users/.",
    "/users/%2e%2e",
    "/users/%2E%2E",
    "/users/%2e%2E",
    "/users/%2E%2e",
    "/users/.%2e",
    "/users/.%2E",
    "/users/%2e.",
    "/users/%2E.",
    "/users/%2e",
    "/users/%2E",
    "/users/..\\",
    "/users/.\\",
    "/users/x\\..\\..",
    "/users/%2e%2e\\register",
    "/users/../register",
    "/users/%2e%2e/register",
    "/register/..",
    "/register/%2e%2e",
    "/%2e%2e/users",
    "/./users",
    "/%2e/register",
];

#[tokio::test]
async fn a_path_with_dot_segments_is_a_404_json_without_contacting_anyone() {
    let (url, auth, users) = setup().await;
    let mut tried = 0;
    for prefix in ["", "/api"] {
        for path in DOT_SEGMENT_PATHS {
            for method in ["GET", "POST", "PUT", "DELETE"] {
                let target = format!("{prefix}{path}");
                let (status, body) = raw_request(&url, method, &target).await;
                assert_eq!(
                    (status, &body),
                    (404, &error(404, "Route not found")),
                    "{method} {target}"
                );
                tried += 1;
            }
        }
    }
    assert_eq!(tried, 2 * DOT_SEGMENT_PATHS.len() * 4);
    assert!(auth.received().is_empty(), "{:?}", auth.received());
    assert!(users.received().is_empty(), "{:?}", users.received());
}

#[tokio::test]
async fn dot_like_segments_that_are_not_dot_segments_are_forwarded_as_written() {
    let (url, _auth, users) = setup().await;
    for (path, forwarded) in [
        ("/api/users/...", "/users/..."),
        ("/api/users/..%5C", "/users/..%5C"),
        ("/api/users/a\\b", "/users/a%5Cb"),
        ("/api/users/%2e%2e%2f", "/users/%2e%2e%2f"),
        ("/api/users/.x", "/users/.x"),
    ] {
        let (status, _) = raw_request(&url, "GET", path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(users.received().pop().unwrap().path, forwarded, "{path}");
    }
}

#[tokio::test]
async fn the_gateway_answers_exactly_its_own_listed_routes() {
    let (url, _auth, _users) = setup().await;
    let wrong = testkit::route_mismatches(gateway(&url, &url, &[]), gateway::ROUTES).await;
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[tokio::test]
async fn every_listed_forwarded_path_goes_downstream_whatever_the_method() {
    let (url, auth, users) = setup().await;
    let listed = gateway::AUTH_PATHS
        .iter()
        .map(|p| (p, &auth))
        .chain(gateway::USERS_PATHS.iter().map(|p| (p, &users)));
    let mut sent = 0;
    for (path, fake) in listed {
        for method in testkit::PROBED_METHODS {
            let before = fake.received().len();
            let path = testkit::concrete_path(path);
            let response = client()
                .request(method.parse().unwrap(), format!("{url}/api{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{method} {path}");
            let received = fake.received();
            assert_eq!(received.len(), before + 1, "{method} {path}");
            let last = received.last().unwrap();
            assert_eq!(
                (last.method.as_str(), last.path.as_str()),
                (method, path.as_str())
            );
            sent += 1;
        }
    }
    assert_eq!(auth.received().len() + users.received().len(), sent);
}

#[tokio::test]
async fn without_service_urls_health_is_the_spec_body_and_asks_no_one() {
    let url = serve(gateway_with(&[])).await;
    assert_eq!(
        health(&url, "/").await.to_string(),
        spec_health().to_string()
    );
}

#[tokio::test]
async fn with_one_service_url_only_that_service_is_probed_and_forwarded_to() {
    let users = Fake::healthy().await;
    let url = serve(gateway_with(&[("USER_SERVICE_URL", &users.url)])).await;
    assert_eq!(
        health(&url, "/").await["downstream"],
        json!({"users": "ok"})
    );
    let (status, _, _) = read(fetch("GET", &format!("{url}/api/users"), &[]).await).await;
    assert_eq!(status, 200);
    for path in ["/api/register", "/login"] {
        let (status, _, body) = read(fetch("POST", &format!("{url}{path}"), &[]).await).await;
        assert_eq!(
            (status, body),
            (404, error(404, "Route not found")),
            "{path}"
        );
    }
    let paths: Vec<String> = users.received().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/", "/users"]);
}

#[tokio::test]
async fn without_service_urls_every_forwarded_path_is_the_unknown_route_404() {
    let url = serve(gateway_with(&[])).await;
    let unknown = read(fetch("GET", &format!("{url}/nope"), &[]).await).await;
    assert_eq!(
        (unknown.0, &unknown.2),
        (404, &error(404, "Route not found"))
    );
    let listed = gateway::AUTH_PATHS.iter().chain(gateway::USERS_PATHS);
    for path in listed {
        let path = testkit::concrete_path(path);
        for prefix in ["", "/api"] {
            for method in testkit::PROBED_METHODS {
                let response = client()
                    .request(method.parse().unwrap(), format!("{url}{prefix}{path}"))
                    .header("content-type", "application/json")
                    .header("authorization", "Bearer abc.def.ghi")
                    .body(r#"{"username":"alice","password":"securePassword123"}"#)
                    .send()
                    .await
                    .unwrap();
                let (status, _, body) = read(response).await;
                assert_eq!(
                    (status, &body),
                    (unknown.0, &unknown.2),
                    "{method} {prefix}{path}"
                );
            }
        }
    }
}

/// The gateway's client is its TCP peer unless that peer is a configured proxy: a
/// loopback client (a port forward) does not choose the address auth counts it under.
/// With a hop key (the local stack's), the gateway proves its `X-Forwarded-For` to auth.
#[tokio::test]
async fn the_forwarded_client_is_the_peer_unless_a_trusted_proxy_names_another() {
    let auth = Fake::healthy().await;
    let users = Fake::healthy().await;
    let login = |url: String| async move {
        client()
            .post(format!("{url}/api/login"))
            .header("content-type", "application/json")
            .header("x-forwarded-for", "203.0.113.9")
            .body("{}")
            .send()
            .await
            .unwrap()
            .status()
    };
    let plain = serve(gateway(&auth.url, &users.url, &[])).await;
    assert_eq!(login(plain).await, 200);
    let got = auth.received().pop().unwrap();
    assert_eq!(got.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(got.header("x-local-hop-key"), None);

    let mut config: gateway::Config = config(&[
        ("AUTH_SERVICE_URL", auth.url.as_str()),
        ("USER_SERVICE_URL", users.url.as_str()),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ]);
    let key = settings::Secret::random();
    config.trusted_proxies = config.trusted_proxies.with_hop_key(key.clone());
    let behind_proxy = serve(gateway::router(
        gateway::AppState::from_config(&config).unwrap(),
    ))
    .await;
    assert_eq!(login(behind_proxy).await, 200);
    let got = auth.received().pop().unwrap();
    assert_eq!(got.header("x-forwarded-for"), Some("203.0.113.9"));
    assert_eq!(got.header("x-local-hop-key"), Some(key.expose()));
}
