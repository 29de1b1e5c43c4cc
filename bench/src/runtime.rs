//! A minimal Lambda Runtime API on loopback that feeds a function binary events and
//! times it from exec to its first answer, reading its peak RSS after the last.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::mpsc;

/// What the stub saw of one invocation's end.
#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    /// The `statusCode` of an API Gateway response; `None` for an error report.
    pub status: Option<u16>,
}

#[derive(Clone)]
struct Stub {
    events: Arc<Mutex<VecDeque<Value>>>,
    /// When each invocation was handed out, in order.
    handed: Arc<Mutex<Vec<Instant>>>,
    ids: Arc<AtomicU64>,
    answers: mpsc::UnboundedSender<Answer>,
}

async fn next(State(stub): State<Stub>) -> (HeaderMap, String) {
    let event = stub.events.lock().ok().and_then(|mut q| q.pop_front());
    let Some(event) = event else {
        std::future::pending::<()>().await;
        unreachable!("pending never completes")
    };
    let id = stub.ids.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut handed) = stub.handed.lock() {
        handed.push(Instant::now());
    }
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + Duration::from_secs(30);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", format!("bench-{id}"));
    set(
        "lambda-runtime-deadline-ms",
        deadline.as_millis().to_string(),
    );
    set(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
    );
    set("lambda-runtime-trace-id", "Root=1-0-0".to_owned());
    (headers, event.to_string())
}

async fn response(State(stub): State<Stub>, body: String) -> &'static str {
    let status = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["statusCode"].as_u64())
        .and_then(|s| u16::try_from(s).ok());
    let _ = stub.answers.send(Answer {
        at: Instant::now(),
        status,
    });
    "{}"
}

async fn error(State(stub): State<Stub>) -> &'static str {
    let _ = stub.answers.send(Answer {
        at: Instant::now(),
        status: None,
    });
    "{}"
}

/// Serves the Runtime API on a free loopback port until the returned task is aborted.
pub async fn serve(events: Vec<Value>) -> std::io::Result<Served> {
    let (answers, received) = mpsc::unbounded_channel();
    let handed = Arc::new(Mutex::new(Vec::new()));
    let stub = Stub {
        events: Arc::new(Mutex::new(events.into())),
        handed: handed.clone(),
        ids: Arc::new(AtomicU64::new(1)),
        answers,
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(Served {
        addr,
        answers: received,
        handed,
        task,
    })
}

/// A running stub: where it listens, the answers it receives, when it handed out each
/// invocation, and its task (abort it to stop).
pub struct Served {
    pub addr: SocketAddr,
    pub answers: mpsc::UnboundedReceiver<Answer>,
    pub handed: Arc<Mutex<Vec<Instant>>>,
    pub task: tokio::task::JoinHandle<()>,
}

/// One run of a function binary under the stub.
#[derive(Debug)]
pub struct Run {
    /// From just before exec to the stub receiving the first answer.
    pub cold: Duration,
    pub first_status: Option<u16>,
    /// For each invocation after the first: from handing it out to its answer (the
    /// process warm).
    pub warm: Vec<Duration>,
    /// How many invocations answered each status (`0` counts error reports).
    pub statuses: BTreeMap<u16, usize>,
    /// `VmHWM` of the process after the last invocation, in KiB.
    pub peak_rss_kib: Option<u64>,
}

/// Starts `exe` with only the Lambda environment plus `env`, feeds it `invocations`
/// events cycling through `events`, and kills it after the last answer.
pub async fn run(
    exe: &Path,
    env: &[(String, String)],
    events: &[Value],
    invocations: usize,
    timeout: Duration,
) -> Result<Run, String> {
    if events.is_empty() || invocations == 0 {
        return Err("need at least one event and one invocation".into());
    }
    let queue = events.iter().cycle().take(invocations).cloned().collect();
    let Served {
        addr,
        mut answers,
        handed,
        task: server,
    } = serve(queue).await.map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_REGION", "us-east-1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    let start = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let result = async {
        let mut statuses = BTreeMap::new();
        let mut first = None;
        let mut warm = Vec::new();
        for n in 0..invocations {
            let answer = tokio::time::timeout(timeout, answers.recv())
                .await
                .map_err(|_| format!("no answer to invocation {} within {timeout:?}", n + 1))?
                .ok_or("the stub stopped")?;
            *statuses.entry(answer.status.unwrap_or(0)).or_insert(0) += 1;
            if first.is_none() {
                first = Some(answer);
            } else {
                let out = handed.lock().ok().and_then(|h| h.get(n).copied());
                warm.extend(out.map(|at| answer.at.duration_since(at)));
            }
        }
        let first = first.ok_or("no answer")?;
        Ok::<_, String>(Run {
            cold: first.at.duration_since(start),
            first_status: first.status,
            warm,
            statuses,
            peak_rss_kib: peak_rss_kib(child.id()),
        })
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    result
}

/// `VmHWM` of a live process, in KiB (Linux only).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}
