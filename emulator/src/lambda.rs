//! Lambda's part: each function's `bootstrap` run as processes behind a Lambda Runtime
//! API (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>), one request
//! at a time per process. A request finds an idle instance or starts a new one (a cold
//! start, logged with its init time); an instance that crashes or runs past the
//! function's timeout is killed and not reused, as Lambda resets such an environment
//! (<https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>).
//! The Runtime API itself, the process's Lambda variables and its peak memory are the
//! workspace's one implementation (`runtime_api`); this module is its event source
//! and answer sink ([`RuntimeApiState`]), and the instances' lifecycle.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use runtime_api::{Answers, Environment, Events, Invocation, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot, watch};

use crate::Error;
use crate::apigw::MAX_INVOKE_PAYLOAD_BYTES;
use crate::template::REGION;

/// Lambda's limit on the init phase.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How an invocation ended, short of a readable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The function posted to `/error` (the runtime's report of a handler error).
    FunctionError,
    /// The process exited (or was never ready) before answering.
    Crashed(String),
    /// Past the function's `Timeout`; the process was killed.
    TimedOut,
    /// The answer was over Lambda's payload limit (the runtime got a 413).
    ResponseTooLarge,
    /// Lambda refused the invocation: the function's concurrency is used up.
    Throttled,
}

/// One function as deployed: its bootstrap, environment and limits, and its instances.
pub struct Function {
    pub name: String,
    bootstrap: PathBuf,
    environment: BTreeMap<String, String>,
    timeout: Duration,
    memory_mb: u64,
    max_instances: usize,
    idle: Mutex<Vec<Instance>>,
    live: Arc<AtomicUsize>,
    started: AtomicU64,
}

pub struct FunctionSpec {
    pub name: String,
    pub bootstrap: PathBuf,
    /// The template's variables plus credentials and endpoints; the ones Lambda
    /// itself sets are added here.
    pub environment: BTreeMap<String, String>,
    pub timeout: Duration,
    pub memory_mb: u64,
    pub max_instances: usize,
}

impl Function {
    pub fn new(spec: FunctionSpec) -> Self {
        Self {
            name: spec.name,
            bootstrap: spec.bootstrap,
            environment: spec.environment,
            timeout: spec.timeout,
            memory_mb: spec.memory_mb,
            max_instances: spec.max_instances,
            idle: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
            started: AtomicU64::new(0),
        }
    }

    /// How many processes of this function are running (busy or idle).
    pub fn instances(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Runs one invocation: the function's answer, or how it failed.
    pub async fn invoke(&self, event: Bytes) -> Result<Bytes, Failure> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let reused = self.take_idle();
        let (instance, init) = match reused {
            Some(instance) => (instance, None),
            None => {
                if self.live.load(Ordering::SeqCst) >= self.max_instances {
                    tracing::warn!(function = %self.name, limit = self.max_instances, "throttled: every instance is busy");
                    return Err(Failure::Throttled);
                }
                let started = Instant::now();
                let instance = self.start().await.map_err(|e| {
                    tracing::error!(function = %self.name, error = %e, "cannot start the bootstrap");
                    Failure::Crashed(e.to_string())
                })?;
                (instance, Some(started))
            }
        };
        let outcome = instance.run(&request_id, event, self.timeout, init).await;
        let duration_ms = outcome.elapsed.as_secs_f64() * 1000.0;
        let memory_used_mb = instance.peak_memory_mb();
        let init_note = outcome
            .init
            .map(|d| format!("\tInit Duration: {:.2} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_default();
        tracing::info!(
            target: "emulate",
            "{} REPORT RequestId: {request_id}\tDuration: {duration_ms:.2} ms\tMemory Size: {} MB\tMax Memory Used: {} MB{init_note}",
            self.name,
            self.memory_mb,
            memory_used_mb.map_or("?".to_owned(), |m| m.to_string()),
        );
        if let Some(init) = outcome.init {
            tracing::info!(
                target: "emulate",
                "{} cold start of instance {}: init {:.1} ms",
                self.name,
                instance.number,
                init.as_secs_f64() * 1000.0
            );
        }
        let over_memory = memory_used_mb.is_some_and(|m| m > self.memory_mb);
        if over_memory {
            tracing::error!(
                function = %self.name,
                "instance {} used more than its MemorySize of {} MB: Lambda would have stopped it (Runtime.OutOfMemory)",
                instance.number, self.memory_mb
            );
        }
        match outcome.result {
            // A handler error or an answer too large: the runtime reported it and
            // polls again; only crashes and timeouts reset the environment.
            Ok(_) | Err(Failure::FunctionError | Failure::ResponseTooLarge) if !over_memory => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(instance);
            }
            Ok(_) | Err(Failure::FunctionError | Failure::ResponseTooLarge) => {
                drop(instance);
                return Err(Failure::Crashed("out of memory".into()));
            }
            Err(ref failure) => {
                tracing::warn!(function = %self.name, instance = instance.number, ?failure, "instance reset");
                drop(instance);
            }
        }
        outcome.result
    }

    /// An idle instance whose process is still alive; dead ones are dropped on the way
    /// (a process that died between invocations is replaced, not invoked).
    fn take_idle(&self) -> Option<Instance> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(instance) = idle.pop() {
            if !*instance.exited.borrow() {
                return Some(instance);
            }
            tracing::warn!(function = %self.name, instance = instance.number, "an idle instance had exited; replacing it");
        }
        None
    }

    /// Starts a process of the bootstrap with a Runtime API of its own.
    async fn start(&self) -> Result<Instance, Error> {
        let number = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let (queue, incoming) = mpsc::channel(1);
        let (ready, _) = watch::channel(None);
        let shared = Arc::new(RuntimeApiState {
            function: self.name.clone(),
            queue,
            incoming: AsyncMutex::new(incoming),
            pending: Mutex::new(None),
            ready,
        });
        let server = runtime_api::serve(shared.clone(), shared.clone())
            .await
            .map_err(Error::RuntimeApi)?;
        let stream = format!("local/[$LATEST]{:032x}", number);
        let lambda = Environment {
            memory_mb: self.memory_mb,
            region: REGION,
            log_stream: &stream,
            task_root: self.bootstrap.parent().unwrap_or(&self.bootstrap),
            ..Environment::new(server.addr(), &self.name)
        };
        let mut command = Command::new(&self.bootstrap);
        command
            .env_clear()
            .envs(&self.environment)
            .envs(lambda.vars())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().map_err(|source| Error::Io {
            path: self.bootstrap.clone(),
            source,
        })?;
        let pid = child.id();
        let label = format!("{}#{number}", self.name);
        if let Some(out) = child.stdout.take() {
            tokio::spawn(relay(label.clone(), BufReader::new(out)));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(relay(label, BufReader::new(err)));
        }
        let (kill, exited) = supervise(child);
        self.live.fetch_add(1, Ordering::SeqCst);
        Ok(Instance {
            number,
            pid,
            shared,
            _server: server,
            kill: Some(kill),
            exited,
            live: self.live.clone(),
        })
    }
}

/// A function's log lines, with the instance they came from.
async fn relay<R: tokio::io::AsyncRead + Unpin>(label: String, reader: BufReader<R>) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        eprintln!("[{label}] {line}");
    }
}

/// Waits for the child in a task of its own: `exited` turns true when it is gone,
/// and sending on (or dropping) `kill` kills it.
fn supervise(mut child: Child) -> (oneshot::Sender<()>, watch::Receiver<bool>) {
    let (kill, killed) = oneshot::channel::<()>();
    let (exit_tx, exited) = watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = child.wait() => {}
            _ = killed => {
                let _ = child.kill().await;
            }
        }
        let _ = exit_tx.send(true);
    });
    (kill, exited)
}

struct Instance {
    number: u64,
    pid: Option<u32>,
    shared: Arc<RuntimeApiState>,
    /// This instance's Runtime API; dropping it stops the server.
    _server: runtime_api::Server,
    kill: Option<oneshot::Sender<()>>,
    exited: watch::Receiver<bool>,
    live: Arc<AtomicUsize>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Outcome {
    result: Result<Bytes, Failure>,
    init: Option<Duration>,
    elapsed: Duration,
}

impl Instance {
    async fn run(
        &self,
        request_id: &str,
        event: Bytes,
        timeout: Duration,
        cold: Option<Instant>,
    ) -> Outcome {
        let mut exited = self.exited.clone();
        let mut init = None;
        if let Some(started) = cold {
            let ready = async {
                let mut ready = self.shared.ready.subscribe();
                let _ = ready.wait_for(|r| r.is_some()).await;

                ready.borrow().clone()
            };
            let failed = |why: String| Outcome {
                result: Err(Failure::Crashed(why)),
                init: Some(started.elapsed()),
                elapsed: Duration::ZERO,
            };
            tokio::select! {
                state = tokio::time::timeout(INIT_TIMEOUT, ready) => match state {
                    Ok(Some(Ready::Polling)) => init = Some(started.elapsed()),
                    Ok(Some(Ready::InitError(error))) => return failed(format!("init error: {error}")),
                    Ok(None) | Err(_) => return failed("init did not finish within 10 s".into()),
                },
                _ = exited.wait_for(|e| *e) => return failed("the process exited during init".into()),
            }
        }
        let (reply, answer) = oneshot::channel();
        let invocation = Queued {
            request_id: request_id.to_owned(),
            event,
            deadline_ms: runtime_api::deadline_in(timeout),
            reply,
        };
        let started = Instant::now();
        if self.shared.queue.send(invocation).await.is_err() {
            return Outcome {
                result: Err(Failure::Crashed("the runtime API is gone".into())),
                init,
                elapsed: started.elapsed(),
            };
        }
        let result = tokio::select! {
            answer = tokio::time::timeout(timeout, answer) => match answer {
                Ok(Ok(Answer::Response(body))) => Ok(body),
                Ok(Ok(Answer::Error)) => Err(Failure::FunctionError),
                Ok(Ok(Answer::TooLarge)) => Err(Failure::ResponseTooLarge),
                Ok(Err(_)) => Err(Failure::Crashed("the runtime API is gone".into())),
                Err(_) => Err(Failure::TimedOut),
            },
            _ = exited.wait_for(|e| *e) => Err(Failure::Crashed("the process exited during the invocation".into())),
        };
        Outcome {
            result,
            init,
            elapsed: started.elapsed(),
        }
    }

    /// The process's peak resident memory (`VmHWM`), in MB.
    fn peak_memory_mb(&self) -> Option<u64> {
        runtime_api::peak_rss_kib(self.pid?).map(|kib| kib.div_ceil(1024))
    }
}

enum Answer {
    Response(Bytes),
    Error,
    TooLarge,
}

/// An invocation waiting for the runtime's `GET /next`.
struct Queued {
    request_id: String,
    event: Bytes,
    deadline_ms: u64,
    reply: oneshot::Sender<Answer>,
}

#[derive(Debug, Clone)]
enum Ready {
    /// The runtime asked for its first event: init is over.
    Polling,
    InitError(String),
}

/// What the Runtime API handlers of one instance share.
struct RuntimeApiState {
    function: String,
    queue: mpsc::Sender<Queued>,
    incoming: AsyncMutex<mpsc::Receiver<Queued>>,
    pending: Mutex<Option<(String, oneshot::Sender<Answer>)>>,
    ready: watch::Sender<Option<Ready>>,
}

impl Events for RuntimeApiState {
    /// `GET /runtime/invocation/next`: the first call ends init; waits for the next
    /// event.
    async fn next(&self) -> Option<Invocation> {
        self.ready.send_if_modified(|r| {
            if r.is_none() {
                *r = Some(Ready::Polling);
                true
            } else {
                false
            }
        });
        let mut incoming = self.incoming.lock().await;
        let queued = incoming.recv().await?;
        drop(incoming);
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((queued.request_id.clone(), queued.reply));
        let trace_id = format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            chrono::Utc::now().timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        Some(Invocation {
            request_id: queued.request_id,
            deadline_ms: queued.deadline_ms,
            function_arn: runtime_api::function_arn(REGION, &self.function),
            trace_id,
            event: queued.event,
        })
    }
}

impl RuntimeApiState {
    /// Takes the pending invocation if `id` names it.
    fn take_pending(&self, id: &str) -> Option<oneshot::Sender<Answer>> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        match pending.take() {
            Some((pending_id, reply)) if pending_id == id => Some(reply),
            other => {
                *pending = other;
                None
            }
        }
    }
}

impl Answers for RuntimeApiState {
    fn response(&self, request_id: &str, body: Option<Bytes>) -> Reply {
        let Some(reply) = self.take_pending(request_id) else {
            return Reply::InvalidRequestId;
        };
        match body {
            Some(bytes) if bytes.len() <= MAX_INVOKE_PAYLOAD_BYTES => {
                let _ = reply.send(Answer::Response(bytes));
                Reply::Accepted
            }
            _ => {
                let _ = reply.send(Answer::TooLarge);
                Reply::TooLarge {
                    limit: MAX_INVOKE_PAYLOAD_BYTES,
                }
            }
        }
    }

    fn error(&self, request_id: &str, body: Bytes) -> Reply {
        let Some(reply) = self.take_pending(request_id) else {
            return Reply::InvalidRequestId;
        };
        tracing::warn!(
            target: "emulate",
            "{} reported an error: {}",
            self.function,
            String::from_utf8_lossy(&body[..body.len().min(1000)])
        );
        let _ = reply.send(Answer::Error);
        Reply::Accepted
    }

    fn init_error(&self, body: Bytes) -> Reply {
        let text = String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned();
        tracing::error!(target: "emulate", "{} failed to initialise: {text}", self.function);
        self.ready.send_replace(Some(Ready::InitError(text)));
        Reply::Accepted
    }
}
