//! The gateway function behind API Gateway: the repo's HTTP API (v2) event fixtures
//! fed through lambda_http's adapter, as the Lambda runtime does.

use serde_json::json;
use testkit::http::*;
use testkit::{LambdaReply, error, event, invoke, with_header, with_path};

use crate::support::{assert_spec_health_with_both_services_up, gateway, gateway_with};

/// Asserts that `reply` is the unknown route's 404 JSON; `what` names the request.
fn assert_route_not_found(reply: &LambdaReply, what: &str) {
    assert_eq!(
        (reply.status, &reply.body),
        (404, &error(404, "Route not found")),
        "{what}"
    );
}

#[tokio::test]
async fn the_health_event_answers_the_spec_body_with_api_gateways_request_id() {
    let fake = Fake::healthy().await;
    let reply = invoke(gateway(&fake.url, &fake.url, &[]), event("gateway-health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["x-request-id"], "REQ-gateway-health");
    assert_spec_health_with_both_services_up(reply.body);
}

#[tokio::test]
async fn the_unknown_route_event_is_a_404_json_without_contacting_anyone() {
    let fake = Fake::healthy().await;
    let reply = invoke(
        gateway(&fake.url, &fake.url, &[]),
        event("gateway-unknown-route"),
    )
    .await;
    assert_route_not_found(&reply, "gateway-unknown-route");
    assert_eq!(reply.headers["x-request-id"], "REQ-gateway-unknown-route");
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn a_client_request_id_wins_over_api_gateways() {
    let dead = dead_url().await;
    let reply = invoke(
        gateway(&dead, &dead, &[]),
        with_header(
            event("gateway-unknown-route"),
            "X-Request-Id",
            "from-client-7",
        ),
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.headers["x-request-id"], "from-client-7");
}

#[tokio::test]
async fn a_forwarded_event_reaches_the_downstream_service() {
    let users = Fake::start(Reply::json(404, error(404, "User not found"))).await;
    let mut request = with_path(event("gateway-unknown-route"), "/api/users/u1");
    request["rawQueryString"] = json!("fields=bio");
    let request = with_header(request, "Authorization", "Bearer t-1");
    let reply = invoke(gateway(&dead_url().await, &users.url, &[]), request).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body, error(404, "User not found"));
    let got = users.only();
    assert_eq!(
        (got.method.as_str(), got.path.as_str()),
        ("GET", "/users/u1")
    );
    assert_eq!(got.query.as_deref(), Some("fields=bio"));
    assert_eq!(got.header("authorization"), Some("Bearer t-1"));
    assert_eq!(
        got.header("x-request-id"),
        Some("REQ-gateway-unknown-route")
    );
}

/// The gateway as deployed: no service URLs, on API Gateway's `$default` route.
fn deployed() -> axum::Router {
    gateway_with(&[])
}

#[tokio::test]
async fn as_deployed_unprefixed_and_unknown_paths_are_the_unknown_route_404() {
    for name in [
        "gateway-register",
        "gateway-users-get",
        "gateway-unknown-route",
        "gateway-dot-segments",
    ] {
        let reply = invoke(deployed(), event(name)).await;
        assert_route_not_found(&reply, name);
        assert_eq!(reply.headers["content-type"], "application/json", "{name}");
        assert_eq!(
            reply.headers["x-request-id"],
            format!("REQ-{name}"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn as_deployed_every_forwarded_path_and_method_is_the_unknown_route_404() {
    let listed = gateway::AUTH_PATHS.iter().chain(gateway::USERS_PATHS);
    for path in listed {
        for prefix in ["", "/api"] {
            for method in testkit::PROBED_METHODS {
                let path = format!("{prefix}{}", testkit::concrete_path(path));
                let mut request = with_path(event("gateway-register"), &path);
                request["requestContext"]["http"]["method"] = json!(method);
                let reply = invoke(deployed(), request).await;
                assert_route_not_found(&reply, &format!("{method} {path}"));
            }
        }
    }
}

#[tokio::test]
async fn as_deployed_the_health_event_probes_nothing() {
    let reply = invoke(deployed(), event("gateway-health")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.to_string(), spec_health().to_string());
}

#[tokio::test]
async fn a_dot_segment_event_reaches_no_one_even_with_service_urls() {
    let fake = Fake::healthy().await;
    for path in [
        "/api/users/%2e%2e",
        "/users/%2E%2E",
        "/api/users/.%2e",
        "/users/..",
    ] {
        let request = with_path(event("gateway-dot-segments"), path);
        let reply = invoke(gateway(&fake.url, &fake.url, &[]), request).await;
        assert_route_not_found(&reply, path);
    }
    assert!(fake.received().is_empty(), "{:?}", fake.received());
}
