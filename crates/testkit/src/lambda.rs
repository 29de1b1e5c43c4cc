//! API Gateway v2 events fed through lambda_http's own adapter, or handed to a real
//! function binary by a stand-in Runtime API.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Sets a fixture's path: its `rawPath` and its request context's, as API Gateway does.
pub fn with_path(mut event: Value, path: &str) -> Value {
    event["rawPath"] = Value::String(path.to_owned());
    event["requestContext"]["http"]["path"] = Value::String(path.to_owned());
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

/// A stand-in for the Lambda Runtime API on a loopback port (the workspace's one
/// Runtime API, `runtime_api`): a function binary started with [`RuntimeApi::env`]
/// polls it for the events given to [`RuntimeApi::invoke`].
pub struct RuntimeApi {
    server: runtime_api::Server,
    events: tokio::sync::mpsc::UnboundedSender<Value>,
    answers: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>,
}

/// The events given to [`RuntimeApi::invoke`], and what the function posts back.
struct Queue {
    events: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>,
    answers: tokio::sync::mpsc::UnboundedSender<Value>,
    invocations: AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (events, pending) = tokio::sync::mpsc::unbounded_channel();
        let (answered, answers) = tokio::sync::mpsc::unbounded_channel();
        let queue = Arc::new(Queue {
            events: tokio::sync::Mutex::new(pending),
            answers: answered,
            invocations: AtomicU64::default(),
        });
        let server = runtime_api::serve(queue.clone(), queue)
            .await
            .expect("a free port");
        Self {
            server,
            events,
            answers: tokio::sync::Mutex::new(answers),
        }
    }

    /// The variables the Lambda runtime needs to start `function` against this stub.
    pub fn env(&self, function: &str) -> Vec<(&'static str, String)> {
        runtime_api::Environment::new(self.server.addr(), function).vars()
    }

    /// Hands `event` to the function and waits up to `timeout` for what it answers
    /// (the response, or the error it reports); `None` when it does not answer.
    pub async fn invoke(&self, event: Value, timeout: std::time::Duration) -> Option<Value> {
        self.events.send(event).ok()?;
        let mut answers = self.answers.lock().await;
        tokio::time::timeout(timeout, answers.recv()).await.ok()?
    }
}

impl runtime_api::Events for Queue {
    async fn next(&self) -> Option<runtime_api::Invocation> {
        let event = self.events.lock().await.recv().await?;
        let number = self.invocations.fetch_add(1, Ordering::SeqCst) + 1;
        Some(runtime_api::Invocation {
            request_id: format!("invocation-{number}"),
            deadline_ms: runtime_api::deadline_in(std::time::Duration::from_secs(60)),
            function_arn: "arn:aws:lambda:eu-west-1:123456789012:function:test".to_owned(),
            trace_id: "Root=1-0-0".to_owned(),
            event: event.to_string().into(),
        })
    }
}

impl Queue {
    /// Passes on what the function posted, as JSON when it is.
    fn pass_on(&self, body: &[u8]) -> runtime_api::Reply {
        let text = String::from_utf8_lossy(body);
        let value = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text.into()));
        let _ = self.answers.send(value);
        runtime_api::Reply::Accepted
    }
}

impl runtime_api::Answers for Queue {
    fn response(&self, _: &str, body: Option<axum::body::Bytes>) -> runtime_api::Reply {
        match body {
            Some(body) => self.pass_on(&body),
            None => runtime_api::Reply::TooLarge {
                limit: runtime_api::READ_LIMIT,
            },
        }
    }

    fn error(&self, _: &str, body: axum::body::Bytes) -> runtime_api::Reply {
        self.pass_on(&body)
    }

    fn init_error(&self, body: axum::body::Bytes) -> runtime_api::Reply {
        self.pass_on(&body)
    }
}
