//! Test support (feature `testing`): API Gateway v2 events fed through lambda_http's
//! own adapter, and the switch for tests that need outside servers.

use std::path::PathBuf;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

/// The repo's API Gateway HTTP API (payload v2) fixtures, in `local/events/`.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../local/events")
}

/// A fixture by name (without `.json`), as JSON to adjust before sending.
pub fn event(name: &str) -> Value {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {name}: {e}"))
}

/// Sets a fixture's body (as JSON text) and its content-length.
pub fn with_body(mut event: Value, body: &Value) -> Value {
    let text = body.to_string();
    event["headers"]["content-length"] = Value::String(text.len().to_string());
    event["body"] = Value::String(text);
    event
}

/// Sets one header of a fixture.
pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name.to_ascii_lowercase()] = Value::String(value.to_owned());
    event
}

/// What the function handed back to the Lambda runtime.
#[derive(Debug)]
pub struct LambdaReply {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
    pub raw: Value,
}

/// Sends an API Gateway event through lambda_http's adapter into `app`, exactly as
/// `lambda_http::run` would, and returns the serialized Lambda response.
pub async fn invoke(app: Router, event: Value) -> LambdaReply {
    let request: LambdaRequest =
        serde_json::from_value(event).expect("fixture is a valid API Gateway event");
    let mut adapter = Adapter::from(app);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("router is infallible");
    let raw = serde_json::to_value(&response).expect("response serializes");
    let status = raw["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = raw["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned())))
        .unwrap_or(Value::Null);
    LambdaReply {
        status,
        headers: raw["headers"].clone(),
        body,
        raw,
    }
}

/// Whether a test that needs an outside server (named by `var`) should run. In CI
/// (`CI` set) a missing server is a failure; elsewhere the test is skipped loudly.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: this test needs its server (run local/test.sh)")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: {var} is not set; run local/test.sh to start the server ***\n"
            );
            None
        }
    }
}
