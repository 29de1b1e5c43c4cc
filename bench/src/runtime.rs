//! A Lambda Runtime API on loopback (the workspace's one, `runtime_api`) that feeds a
//! function binary events and times it from exec to its first answer, reading its
//! peak RSS ([`peak_rss_kib`]) after the last.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use runtime_api::{Answers, Environment, Events, Invocation, Reply};
use serde_json::Value;
use tokio::sync::mpsc;

pub use runtime_api::peak_rss_kib;

/// What the stub saw of one invocation's end.
#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    /// The `statusCode` of an API Gateway response; `None` for an error report.
    pub status: Option<u16>,
}

/// The events to hand out, in order, and where the answers go.
struct Stub {
    events: Mutex<VecDeque<Value>>,
    /// When each invocation was handed out, in order.
    handed: Arc<Mutex<Vec<Instant>>>,
    ids: AtomicU64,
    answers: mpsc::UnboundedSender<Answer>,
}

impl Events for Stub {
    /// The next event; once they are all handed out, a poll that never ends.
    async fn next(&self) -> Option<Invocation> {
        let event = self.events.lock().ok().and_then(|mut q| q.pop_front());
        let Some(event) = event else {
            return std::future::pending().await;
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut handed) = self.handed.lock() {
            handed.push(Instant::now());
        }
        Some(Invocation {
            request_id: format!("bench-{id}"),
            deadline_ms: runtime_api::deadline_in(Duration::from_secs(30)),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:bench".to_owned(),
            trace_id: "Root=1-0-0".to_owned(),
            event: event.to_string().into(),
        })
    }
}

impl Stub {
    fn answered(&self, status: Option<u16>) -> Reply {
        let _ = self.answers.send(Answer {
            at: Instant::now(),
            status,
        });
        Reply::Accepted
    }
}

impl Answers for Stub {
    fn response(&self, _: &str, body: Option<Bytes>) -> Reply {
        let status = body
            .and_then(|body| serde_json::from_slice::<Value>(&body).ok())
            .and_then(|v| v["statusCode"].as_u64())
            .and_then(|s| u16::try_from(s).ok());
        self.answered(status)
    }

    fn error(&self, _: &str, _: Bytes) -> Reply {
        self.answered(None)
    }

    fn init_error(&self, _: Bytes) -> Reply {
        self.answered(None)
    }
}

/// Serves the Runtime API on a free loopback port until the returned [`Served`] is
/// dropped.
pub async fn serve(events: Vec<Value>) -> std::io::Result<Served> {
    let (answers, received) = mpsc::unbounded_channel();
    let handed = Arc::new(Mutex::new(Vec::new()));
    let stub = Arc::new(Stub {
        events: Mutex::new(events.into()),
        handed: handed.clone(),
        ids: AtomicU64::new(1),
        answers,
    });
    let server = runtime_api::serve(stub.clone(), stub).await?;
    Ok(Served {
        addr: server.addr(),
        answers: received,
        handed,
        server,
    })
}

/// A running stub: where it listens, the answers it receives, when it handed out each
/// invocation, and its server (dropping it stops the stub).
pub struct Served {
    pub addr: SocketAddr,
    pub answers: mpsc::UnboundedReceiver<Answer>,
    pub handed: Arc<Mutex<Vec<Instant>>>,
    pub server: runtime_api::Server,
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
        server,
    } = serve(queue).await.map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .env_clear()
        .envs(Environment::new(addr, "bench").vars())
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
    drop(server);
    result
}
