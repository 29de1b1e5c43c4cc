//! API Gateway v2 events fed through lambda_http's own adapter, or handed to a real
//! function binary by a stand-in Runtime API.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

/// The repo's API Gateway HTTP API (payload v2) fixtures, in `fixtures/events/`.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events")
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
    invoke_with(app, event, Context::default()).await
}

/// [`invoke`] in an invocation that must end `left` from now (its context's
/// `deadline`, as the Runtime API's `Lambda-Runtime-Deadline-Ms` sets it).
pub async fn invoke_due_in(app: Router, event: Value, left: std::time::Duration) -> LambdaReply {
    let deadline = std::time::SystemTime::now() + left;
    let mut context = Context::default();
    context.deadline = deadline
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis()
        .try_into()
        .expect("a deadline in milliseconds fits u64");
    invoke_with(app, event, context).await
}

/// [`invoke`] with the invocation's `context`.
pub async fn invoke_with(app: Router, event: Value, context: Context) -> LambdaReply {
    let request: LambdaRequest =
        serde_json::from_value(event).expect("fixture is a valid API Gateway event");
    let mut adapter = Adapter::from(app);
    let response = adapter
        .call(LambdaEvent::new(request, context))
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

/// A stand-in for the Lambda Runtime API on a loopback port: a function binary started
/// with [`RuntimeApi::env`] polls it for the events given to [`RuntimeApi::invoke`].
pub struct RuntimeApi {
    address: String,
    events: tokio::sync::mpsc::UnboundedSender<Value>,
    answers: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>,
}

#[derive(Clone)]
struct RuntimeState {
    events: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>>,
    answers: tokio::sync::mpsc::UnboundedSender<Value>,
    invocations: Arc<AtomicU64>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        use axum::routing::{get, post};
        let (events, pending) = tokio::sync::mpsc::unbounded_channel();
        let (answered, answers) = tokio::sync::mpsc::unbounded_channel();
        let state = RuntimeState {
            events: Arc::new(tokio::sync::Mutex::new(pending)),
            answers: answered,
            invocations: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
            .route("/2018-06-01/runtime/init/error", post(answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("bound").to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            events,
            answers: tokio::sync::Mutex::new(answers),
        }
    }

    /// The variables the Lambda runtime needs to start `function` against this stub.
    pub fn env(&self, function: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ]
    }

    /// Hands `event` to the function and waits up to `timeout` for what it answers
    /// (the response, or the error it reports); `None` when it does not answer.
    pub async fn invoke(&self, event: Value, timeout: std::time::Duration) -> Option<Value> {
        self.events.send(event).ok()?;
        let mut answers = self.answers.lock().await;
        tokio::time::timeout(timeout, answers.recv()).await.ok()?
    }
}

async fn next_event(
    axum::extract::State(state): axum::extract::State<RuntimeState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(event) = state.events.lock().await.recv().await else {
        return axum::http::StatusCode::GONE.into_response();
    };
    let n = state.invocations.fetch_add(1, Ordering::SeqCst) + 1;
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + std::time::Duration::from_secs(60);
    (
        [
            ("lambda-runtime-aws-request-id", format!("invocation-{n}")),
            (
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:test".to_owned(),
            ),
            ("lambda-runtime-trace-id", "Root=1-0-0".to_owned()),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn answer(
    axum::extract::State(state): axum::extract::State<RuntimeState>,
    body: String,
) -> &'static str {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = state.answers.send(value);
    "{}"
}
