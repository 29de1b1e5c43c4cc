//! The Lambda Runtime API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>)
//! as Lambda serves it to a function's process, once for every part of the workspace
//! that runs a real function binary: the emulator (`emulator::lambda`), the tests'
//! stand-in (`testkit::lambda`) and the bench (`bench::runtime`).
//!
//! [`serve`] answers the runtime's four calls on a loopback port: `GET /next` takes the
//! next [`Invocation`] from an [`Events`] source, and what the runtime posts back
//! (`/response`, `/error`, `/init/error`) goes to an [`Answers`] sink, whose [`Reply`]
//! is the answer the runtime gets. [`Environment`] is what Lambda sets in the
//! process, and [`peak_rss_kib`] reads its peak memory.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How much of a posted body the server reads before it gives up on it: an answer
/// past this is handed to [`Answers::response`] as `None`.
pub const READ_LIMIT: usize = 64 * 1024 * 1024;

/// The region, and the account of the function ARNs, a function runs in here (moto's
/// default account).
pub const REGION: &str = "us-east-1";
pub const ACCOUNT_ID: &str = "123456789012";

/// One event as `GET /runtime/invocation/next` hands it out, with its headers.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`, the id the runtime answers under.
    pub request_id: String,
    /// `Lambda-Runtime-Deadline-Ms`: when the invocation times out, in milliseconds
    /// since the epoch ([`deadline_in`]).
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn` ([`function_arn`]).
    pub function_arn: String,
    /// `Lambda-Runtime-Trace-Id`.
    pub trace_id: String,
    /// The event itself (JSON).
    pub event: Bytes,
}

/// The deadline of an invocation that has `left` from now, as
/// `Lambda-Runtime-Deadline-Ms` gives it.
pub fn deadline_in(left: Duration) -> u64 {
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + left;
    u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX)
}

/// The ARN of the function `name` in `region` of [`ACCOUNT_ID`].
pub fn function_arn(region: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}")
}

/// Where the events of a Runtime API come from.
pub trait Events: Send + Sync + 'static {
    /// The next invocation for the runtime's `GET /next`, waiting as long as that
    /// takes; `None` when there will be none (the runtime is answered 500).
    fn next(&self) -> impl Future<Output = Option<Invocation>> + Send;
}

/// Where what the runtime posts back goes.
pub trait Answers: Send + Sync + 'static {
    /// `POST /runtime/invocation/{id}/response`: the answer, or `None` when it was
    /// over [`READ_LIMIT`].
    fn response(&self, request_id: &str, body: Option<Bytes>) -> Reply;
    /// `POST /runtime/invocation/{id}/error`: the handler failed.
    fn error(&self, request_id: &str, body: Bytes) -> Reply;
    /// `POST /runtime/init/error`: the function failed to initialise.
    fn init_error(&self, body: Bytes) -> Reply;
}

/// What the runtime is answered when it posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// 202 `{"status": "OK"}`.
    Accepted,
    /// 400 `InvalidRequestID`: no invocation is pending under that id.
    InvalidRequestId,
    /// 413 `RequestEntityTooLarge`: the answer is over `limit` bytes.
    TooLarge { limit: usize },
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        match self {
            Reply::Accepted => {
                (StatusCode::ACCEPTED, axum::Json(json!({ "status": "OK" }))).into_response()
            }
            Reply::InvalidRequestId => runtime_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestID",
                "Invalid request ID",
            ),
            Reply::TooLarge { limit } => runtime_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("Exceeded maximum allowed payload size ({limit} bytes)."),
            ),
        }
    }
}

fn runtime_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errorMessage": message, "errorType": error_type })),
    )
        .into_response()
}

/// A Runtime API being served; dropping it stops the server.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Where it listens: the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Runtime<E, A> {
    events: Arc<E>,
    answers: Arc<A>,
}

impl<E, A> Clone for Runtime<E, A> {
    fn clone(&self) -> Self {
        Self {
            events: self.events.clone(),
            answers: self.answers.clone(),
        }
    }
}

/// Serves a Runtime API on a free loopback port, with events from `events` and the
/// runtime's answers to `answers`.
pub async fn serve<E: Events, A: Answers>(
    events: Arc<E>,
    answers: Arc<A>,
) -> std::io::Result<Server> {
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next::<E, A>))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response::<E, A>),
        )
        .route(
            "/2018-06-01/runtime/invocation/{id}/error",
            post(error::<E, A>),
        )
        .route("/2018-06-01/runtime/init/error", post(init_error::<E, A>))
        .with_state(Runtime { events, answers });
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Server { addr, task })
}

/// `GET /runtime/invocation/next`: waits for the next event.
async fn next<E: Events, A>(State(runtime): State<Runtime<E, A>>) -> Response {
    let Some(invocation) = runtime.events.next().await else {
        return runtime_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Internal Server Error",
        );
    };
    let mut response = Response::new(Body::from(invocation.event));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set(
        "lambda-runtime-deadline-ms",
        invocation.deadline_ms.to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        invocation.function_arn,
    );
    set("lambda-runtime-trace-id", invocation.trace_id);
    response
}

/// `POST /runtime/invocation/{id}/response`. The body is read past any payload
/// limit of the sink's, so the runtime gets its 413 rather than a reset connection.
async fn response<E, A: Answers>(
    State(runtime): State<Runtime<E, A>>,
    UrlPath(id): UrlPath<String>,
    body: Body,
) -> Reply {
    let body = axum::body::to_bytes(body, READ_LIMIT).await.ok();
    runtime.answers.response(&id, body)
}

/// `POST /runtime/invocation/{id}/error`.
async fn error<E, A: Answers>(
    State(runtime): State<Runtime<E, A>>,
    UrlPath(id): UrlPath<String>,
    body: Body,
) -> Reply {
    let body = axum::body::to_bytes(body, READ_LIMIT)
        .await
        .unwrap_or_default();
    runtime.answers.error(&id, body)
}

/// `POST /runtime/init/error`.
async fn init_error<E, A: Answers>(State(runtime): State<Runtime<E, A>>, body: Body) -> Reply {
    let body = axum::body::to_bytes(body, READ_LIMIT)
        .await
        .unwrap_or_default();
    runtime.answers.init_error(body)
}

/// The variables Lambda itself sets in a function's process (its reserved ones):
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>.
#[derive(Debug, Clone)]
pub struct Environment<'a> {
    /// The Runtime API the process polls ([`Server::addr`]).
    pub runtime_api: SocketAddr,
    pub function: &'a str,
    /// `MemorySize`, in MB.
    pub memory_mb: u64,
    pub region: &'a str,
    /// The CloudWatch log stream of this instance.
    pub log_stream: &'a str,
    /// The directory of the function's code (`LAMBDA_TASK_ROOT`).
    pub task_root: &'a Path,
}

impl<'a> Environment<'a> {
    /// The function `function` against `runtime_api`, with Lambda's smallest memory
    /// size, in [`REGION`], logging to a stream named for it, its code in `/var/task`.
    pub fn new(runtime_api: SocketAddr, function: &'a str) -> Self {
        Self {
            runtime_api,
            function,
            memory_mb: 128,
            region: REGION,
            log_stream: function,
            task_root: Path::new("/var/task"),
        }
    }

    /// Each variable and its value.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.runtime_api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", self.function.to_owned()),
            (
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                self.memory_mb.to_string(),
            ),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", self.function),
            ),
            ("AWS_LAMBDA_LOG_STREAM_NAME", self.log_stream.to_owned()),
            ("AWS_REGION", self.region.to_owned()),
            ("AWS_DEFAULT_REGION", self.region.to_owned()),
            ("_HANDLER", "bootstrap".to_owned()),
            (
                "LAMBDA_TASK_ROOT",
                self.task_root.to_string_lossy().into_owned(),
            ),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ]
    }
}

/// The peak resident memory (`VmHWM`) of the live process `pid`, in KiB (Linux only).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// One event, then none; records what the runtime posts.
    #[derive(Default)]
    struct Recorder {
        event: Mutex<Option<Invocation>>,
        posted: Mutex<Vec<String>>,
    }

    impl Events for Recorder {
        async fn next(&self) -> Option<Invocation> {
            self.event.lock().unwrap().take()
        }
    }

    impl Answers for Recorder {
        fn response(&self, request_id: &str, body: Option<Bytes>) -> Reply {
            let Some(body) = body else {
                return Reply::TooLarge { limit: READ_LIMIT };
            };
            if request_id != "r-1" {
                return Reply::InvalidRequestId;
            }
            self.posted.lock().unwrap().push(format!(
                "response {request_id} {}",
                String::from_utf8_lossy(&body)
            ));
            Reply::Accepted
        }

        fn error(&self, request_id: &str, body: Bytes) -> Reply {
            self.posted.lock().unwrap().push(format!(
                "error {request_id} {}",
                String::from_utf8_lossy(&body)
            ));
            Reply::Accepted
        }

        fn init_error(&self, body: Bytes) -> Reply {
            self.posted
                .lock()
                .unwrap()
                .push(format!("init {}", String::from_utf8_lossy(&body)));
            Reply::Accepted
        }
    }

    /// One HTTP/1.1 exchange with the server: the answer's head and body as text.
    async fn call(server: &Server, method: &str, path: &str, body: &str) -> (String, String) {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: runtime\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.to_ascii_lowercase(), body.to_owned())
    }

    /// [`call`] with a POST of `body` to `path` under the Runtime API's base path.
    async fn post(server: &Server, path: &str, body: &str) -> (String, String) {
        call(server, "POST", &format!("/2018-06-01/runtime/{path}"), body).await
    }

    async fn served() -> (Arc<Recorder>, Server) {
        let recorder = Arc::new(Recorder::default());
        *recorder.event.lock().unwrap() = Some(Invocation {
            request_id: "r-1".into(),
            deadline_ms: 1_700_000_000_000,
            function_arn: function_arn(REGION, "auth"),
            trace_id: "Root=1-0-0".into(),
            event: Bytes::from_static(b"{\"rawPath\":\"/\"}"),
        });
        let server = serve(recorder.clone(), recorder.clone()).await.unwrap();
        (recorder, server)
    }

    #[tokio::test]
    async fn next_hands_out_the_sources_event_with_lambdas_headers_then_500_when_there_is_none() {
        let (_, server) = served().await;
        let (head, body) = call(&server, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert_eq!(body, "{\"rawPath\":\"/\"}");
        for header in [
            "content-type: application/json",
            "lambda-runtime-aws-request-id: r-1",
            "lambda-runtime-deadline-ms: 1700000000000",
            "lambda-runtime-invoked-function-arn: arn:aws:lambda:us-east-1:123456789012:function:auth",
            "lambda-runtime-trace-id: root=1-0-0",
        ] {
            assert!(head.contains(header), "no {header} in {head}");
        }
        let (head, body) = call(&server, "GET", "/2018-06-01/runtime/invocation/next", "").await;
        assert!(head.starts_with("http/1.1 500"), "{head}");
        assert!(body.contains("InternalServerError"), "{body}");
    }

    #[tokio::test]
    async fn what_the_runtime_posts_reaches_the_sink_and_its_reply_is_the_answer() {
        let (recorder, server) = served().await;
        let (head, body) = post(&server, "invocation/r-1/response", "{\"statusCode\":200}").await;
        assert!(head.starts_with("http/1.1 202"), "{head}");
        assert_eq!(body, "{\"status\":\"OK\"}");
        let (head, body) = post(&server, "invocation/r-2/response", "{}").await;
        assert!(head.starts_with("http/1.1 400"), "{head}");
        assert_eq!(
            body,
            "{\"errorMessage\":\"Invalid request ID\",\"errorType\":\"InvalidRequestID\"}"
        );
        let (head, _) = post(&server, "invocation/r-1/error", "{\"errorType\":\"E\"}").await;
        assert!(head.starts_with("http/1.1 202"), "{head}");
        let (head, _) = post(&server, "init/error", "boom").await;
        assert!(head.starts_with("http/1.1 202"), "{head}");
        assert_eq!(
            *recorder.posted.lock().unwrap(),
            [
                "response r-1 {\"statusCode\":200}",
                "error r-1 {\"errorType\":\"E\"}",
                "init boom",
            ]
        );
    }

    #[tokio::test]
    async fn a_too_large_reply_names_the_limit_as_lambda_does() {
        let response = Reply::TooLarge { limit: 6_291_556 }.into_response();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&body),
            "{\"errorMessage\":\"Exceeded maximum allowed payload size (6291556 bytes).\",\"errorType\":\"RequestEntityTooLarge\"}"
        );
    }

    #[tokio::test]
    async fn dropping_the_server_stops_it() {
        let (_, server) = served().await;
        let addr = server.addr();
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(TcpStream::connect(addr).await.is_err());
    }

    #[test]
    fn the_environment_is_lambdas_reserved_variables() {
        let addr: SocketAddr = "127.0.0.1:9001".parse().unwrap();
        let vars: std::collections::BTreeMap<_, _> = Environment {
            memory_mb: 256,
            log_stream: "stream-1",
            task_root: Path::new("/build/Auth"),
            ..Environment::new(addr, "auth")
        }
        .vars()
        .into_iter()
        .collect();
        assert_eq!(vars["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:9001");
        assert_eq!(vars["AWS_LAMBDA_FUNCTION_NAME"], "auth");
        assert_eq!(vars["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
        assert_eq!(vars["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
        assert_eq!(vars["AWS_LAMBDA_LOG_GROUP_NAME"], "/aws/lambda/auth");
        assert_eq!(vars["AWS_LAMBDA_LOG_STREAM_NAME"], "stream-1");
        assert_eq!(vars["AWS_REGION"], "us-east-1");
        assert_eq!(vars["LAMBDA_TASK_ROOT"], "/build/Auth");
        assert_eq!(vars.len(), 14);
    }

    #[test]
    fn a_deadline_is_in_milliseconds_from_now() {
        let now = deadline_in(Duration::ZERO);
        let later = deadline_in(Duration::from_secs(60));
        assert!((59_900..=60_100).contains(&(later - now)), "{now} {later}");
    }

    #[test]
    fn the_peak_memory_of_this_process_is_read_and_of_no_process_is_none() {
        let kib = peak_rss_kib(std::process::id()).expect("VmHWM on Linux");
        assert!(kib > 0);
        assert_eq!(peak_rss_kib(u32::MAX), None);
    }
}
