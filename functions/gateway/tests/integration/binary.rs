//! The gateway's Lambda binary under a stand-in Runtime API: as deployed (no service
//! URLs) it forwards nothing; a malformed configuration stops it naming the variable.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use testkit::error;
use testkit::http::*;

fn command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear().env("RUST_LOG", "off");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd
}

#[test]
fn a_malformed_service_url_stops_the_binary_naming_the_variable() {
    let out = command(&[("USER_SERVICE_URL", "users.internal:3001")])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("USER_SERVICE_URL"), "{stderr}");
}

/// The health event answered by the real binary under a stand-in Runtime API, with
/// `service_urls` as its `AUTH_SERVICE_URL` and `USER_SERVICE_URL` if given.
async fn health_from_the_binary(service_urls: Option<&str>) -> Value {
    let answer = answer_from_the_binary("gateway-health", service_urls).await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
    assert_eq!(answer["headers"]["x-request-id"], "REQ-gateway-health");
    serde_json::from_str(answer["body"].as_str().unwrap()).unwrap()
}

/// The real binary's answer to the fixture `event` under a stand-in Runtime API.
async fn answer_from_the_binary(event: &str, service_urls: Option<&str>) -> Value {
    answer_from_the_binary_with(event, service_urls, &[]).await
}

/// [`answer_from_the_binary`] with `extra` in the binary's environment.
async fn answer_from_the_binary_with(
    event: &str,
    service_urls: Option<&str>,
    extra: &[(&str, &str)],
) -> Value {
    let runtime = testkit::RuntimeApi::start().await;
    let lambda = runtime.env("gateway");
    let mut env: Vec<(&str, &str)> = lambda.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if let Some(url) = service_urls {
        env.extend([("AUTH_SERVICE_URL", url), ("USER_SERVICE_URL", url)]);
    }
    env.extend_from_slice(extra);
    let mut child = command(&env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");

    let answer = runtime
        .invoke(testkit::event(event), Duration::from_secs(20))
        .await;
    let _ = child.kill();
    let _ = child.wait();
    answer.expect("the binary answered within 20 s")
}

#[tokio::test]
async fn the_binary_answers_a_health_event_without_a_jwt_secret() {
    let dead = dead_url().await;
    let body = health_from_the_binary(Some(&dead)).await;
    assert_eq!(body["service"], "gateway-service");
    assert_eq!(
        body["downstream"],
        serde_json::json!({"auth": "unavailable", "users": "unavailable"})
    );
}

#[tokio::test]
async fn without_service_urls_as_in_aws_the_binary_probes_nothing() {
    let body = health_from_the_binary(None).await;
    assert_eq!(body["service"], "gateway-service");
    assert!(body.get("downstream").is_none(), "{body}");
}

#[tokio::test]
async fn without_service_urls_as_in_aws_the_binary_forwards_nothing() {
    for event in [
        "gateway-register",
        "gateway-users-get",
        "gateway-dot-segments",
    ] {
        let answer = answer_from_the_binary(event, None).await;
        assert_eq!(answer["statusCode"], 404, "{event}: {answer}");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, error(404, "Route not found"), "{event}");
    }
}

#[tokio::test]
async fn the_binary_reads_none_of_auth_s_settings() {
    let answer = answer_from_the_binary_with(
        "gateway-health",
        None,
        &[
            ("BCRYPT_COST", "garbage"),
            ("LOGIN_MAX_FAILURES_PER_USER", "garbage"),
            ("REGISTER_MAX_PER_IP", "garbage"),
            ("JWT_SECRET", "short"),
            ("STORE", "postgres"),
        ],
    )
    .await;
    assert_eq!(answer["statusCode"], 200, "{answer}");
}

#[test]
fn a_malformed_value_stops_the_binary_like_every_other() {
    testkit::assert_malformed_value_stops(env!("CARGO_BIN_EXE_gateway"), "gateway");
}

#[test]
fn a_state_that_cannot_be_built_stops_the_binary_the_same_way() {
    let stderr = testkit::assert_cannot_start(
        env!("CARGO_BIN_EXE_gateway"),
        "gateway",
        &[("CORS_ALLOWED_ORIGINS", "https://ok.example,bad\u{7f}origin")],
    );
    assert!(stderr.contains("CORS_ALLOWED_ORIGINS"), "{stderr}");
}
