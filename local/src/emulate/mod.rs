//! `cargo run -p local -- emulate`: the API as `template.yaml` deploys it, on
//! localhost and without Docker. An emulated API Gateway (routes, CORS, payload format
//! 2.0, its own error answers: [`apigw`]) in front of the real `bootstrap` binaries of
//! `sam build` run behind a Lambda Runtime API ([`lambda`]), with the template's
//! environment, timeouts and memory sizes ([`template`]), on a DynamoDB (moto) whose
//! tables and per-function IAM policies come from the template too.

pub mod apigw;
pub mod lambda;
pub mod setup;
pub mod template;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response};
use axum::Router;
use tokio::net::TcpListener;

use apigw::{GatewayError, Throttle};
use lambda::{Failure, Function, FunctionSpec};
use template::{Cors, Route, Template};

/// API Gateway's integration timeout for HTTP APIs (its maximum and default).
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html>
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Processes per function at most, standing in for Lambda's concurrency limit.
pub const DEFAULT_MAX_INSTANCES: usize = 10;

/// The emulated API: routes and CORS of the template, and its functions.
pub struct Api {
    routes: Vec<Route>,
    cors: Option<Cors>,
    functions: BTreeMap<String, Arc<Function>>,
    throttle: Option<Throttle>,
}

/// What [`Api::new`] needs besides the template.
pub struct Setup {
    /// Where `sam build` put `<LogicalId>/bootstrap`.
    pub build_dir: PathBuf,
    /// Added to every function's environment (the DynamoDB endpoint).
    pub environment: BTreeMap<String, String>,
    /// Per function: its own credentials (access key id and secret).
    pub credentials: BTreeMap<String, BTreeMap<String, String>>,
    pub max_instances: usize,
    /// The stage's throttling limits (burst, rate), when the template sets them.
    pub throttle: Option<(u64, u64)>,
}

impl Api {
    pub fn new(template: &Template, setup: &Setup) -> Result<Self, String> {
        let mut functions = BTreeMap::new();
        for function in &template.functions {
            let bootstrap = setup.build_dir.join(&function.id).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(format!(
                    "no {} (run `sam build`, or pass --build-dir)",
                    bootstrap.display()
                ));
            }
            let mut environment = function.environment.clone();
            if let Some(format) = &function.log_format {
                environment.insert("AWS_LAMBDA_LOG_FORMAT".into(), format.clone());
            }
            environment.extend(setup.environment.clone());
            if let Some(credentials) = setup.credentials.get(&function.id) {
                environment.extend(credentials.clone());
            }
            let spec = FunctionSpec {
                name: function.id.clone(),
                bootstrap,
                environment,
                timeout: function.timeout,
                memory_mb: function.memory_mb,
                max_instances: setup.max_instances,
            };
            functions.insert(function.id.clone(), Arc::new(Function::new(spec)));
        }
        Ok(Self {
            routes: template.routes.clone(),
            cors: template.cors.clone(),
            functions,
            throttle: setup
                .throttle
                .map(|(burst, rate)| Throttle::new(burst, rate)),
        })
    }

    pub fn function(&self, id: &str) -> Option<&Arc<Function>> {
        self.functions.get(id)
    }

    pub fn router(self: Arc<Self>) -> Router {
        Router::new().fallback(handle).with_state(self)
    }

    /// Serves on `listener` until the future ends, each connection guarded as the
    /// local stack's are ([`crate::serve`], default limits).
    pub async fn serve(self: Arc<Self>, listener: TcpListener) -> std::io::Result<()> {
        let app = self.router();
        crate::serve::serve(
            listener,
            app,
            edge::server::ServerLimits::default(),
            std::future::pending(),
        )
        .await;
        Ok(())
    }
}

async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request<Body>,
) -> Response<Body> {
    let started = Instant::now();
    let request_id = apigw::request_id();
    let method = request.method().clone();
    let raw_path = request.uri().path().to_owned();
    let (mut response, route_key) = answer(&api, client, request, &request_id).await;
    response.headers_mut().insert(
        "apigw-requestid",
        HeaderValue::from_str(&request_id).expect("an id in base64 is a header value"),
    );
    tracing::info!(
        target: "emulate",
        "{method} {raw_path} → {} {} ({:.1} ms)",
        route_key.as_deref().unwrap_or("-"),
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response.map(Body::from)
}

async fn answer(
    api: &Api,
    client: SocketAddr,
    request: Request<Body>,
    request_id: &str,
) -> (Response<Bytes>, Option<String>) {
    if api.throttle.as_ref().is_some_and(|t| !t.admit()) {
        return (GatewayError::TooManyRequests.response(), None);
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, apigw::MAX_REQUEST_BYTES).await else {
        return (GatewayError::RequestEntityTooLarge.response(), None);
    };
    if let Some(cors) = &api.cors {
        if apigw::is_preflight(&parts.method, &parts.headers) {
            return (cors.preflight(&parts.headers), None);
        }
    }
    let raw_path = parts.uri.path();
    let Some((route, params)) = apigw::select(&api.routes, &parts.method, raw_path) else {
        return (GatewayError::NotFound.response(), None);
    };
    let route_key = route.key();
    let event = apigw::event(
        &apigw::Request {
            method: &parts.method,
            raw_path,
            raw_query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body: &body,
            client,
            local_port: host_port(&parts.headers),
            request_id,
            now: chrono::Utc::now(),
        },
        &route_key,
        &params,
    );
    let event = Bytes::from(event.to_string());
    let mut response = if event.len() > apigw::MAX_INVOKE_PAYLOAD_BYTES {
        tracing::warn!(target: "emulate", "Lambda refuses an event of {} bytes (over 6 MB)", event.len());
        GatewayError::InternalServerError.response()
    } else {
        invoke(api, &route.function, event).await
    };
    if let Some(cors) = &api.cors {
        cors.apply(&parts.headers, &mut response);
    }
    (response, Some(route_key))
}

/// The port of the `Host` the client called (`x-forwarded-port` in the event).
fn host_port(headers: &axum::http::HeaderMap) -> u16 {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(80)
}

/// Calls the function and maps its answer; API Gateway waits for at most
/// [`INTEGRATION_TIMEOUT`], while the invocation itself runs to the function's own
/// timeout.
async fn invoke(api: &Api, function: &str, event: Bytes) -> Response<Bytes> {
    let Some(function) = api.functions.get(function).cloned() else {
        tracing::error!(target: "emulate", "route to {function}, which is not a function here");
        return GatewayError::InternalServerError.response();
    };
    let name = function.name.clone();
    let call = tokio::spawn(async move { function.invoke(event).await });
    match tokio::time::timeout(INTEGRATION_TIMEOUT, call).await {
        Err(_) => GatewayError::ServiceUnavailable.response(),
        Ok(Err(join)) => {
            tracing::error!(target: "emulate", "{name}: invocation task failed: {join}");
            GatewayError::InternalServerError.response()
        }
        Ok(Ok(Ok(payload))) => match apigw::answer(&payload) {
            Some(response) => response,
            None => {
                tracing::warn!(
                    target: "emulate",
                    "{name} answered in a shape API Gateway cannot read: {}",
                    String::from_utf8_lossy(&payload[..payload.len().min(300)])
                );
                GatewayError::InternalServerError.response()
            }
        },
        Ok(Ok(Err(failure))) => {
            let why = match &failure {
                Failure::FunctionError => "the function reported an error".to_owned(),
                Failure::Crashed(why) => format!("the function crashed: {why}"),
                Failure::TimedOut => "the function timed out (Task timed out)".to_owned(),
                Failure::ResponseTooLarge => "the function's answer is over 6 MB".to_owned(),
                Failure::Throttled => "Lambda throttled the invocation".to_owned(),
            };
            tracing::warn!(target: "emulate", "{name}: {why}");
            GatewayError::InternalServerError.response()
        }
    }
}

/// Ctrl-C or SIGTERM: either stops the emulation cleanly, its moto and functions too.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Command-line options of `local emulate`.
#[derive(Debug, Clone)]
pub struct Options {
    pub port: u16,
    pub template: PathBuf,
    /// `None`: run `scripts/sam_build.sh` and use `.aws-sam/build`.
    pub build_dir: Option<PathBuf>,
    pub parameters: BTreeMap<String, String>,
    /// `None`: start a moto of our own, with the template's IAM policies enforced.
    pub dynamodb_endpoint: Option<String>,
    pub max_instances: usize,
}

pub const USAGE: &str = "usage: local emulate [--port N] [--template PATH] [--build-dir DIR] \
[--parameter-overrides NAME=VALUE ...] [--dynamodb-endpoint URL] [--max-instances N]";

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Options {
            port: 3002,
            template: default_template(),
            build_dir: None,
            parameters: BTreeMap::new(),
            dynamodb_endpoint: None,
            max_instances: DEFAULT_MAX_INSTANCES,
        };
        let mut args = args.iter().peekable();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
            };
            match arg.as_str() {
                "--port" => {
                    options.port = value("--port")?
                        .parse()
                        .map_err(|_| format!("--port takes a port number\n{USAGE}"))?
                }
                "--template" => options.template = PathBuf::from(value("--template")?),
                "--build-dir" => options.build_dir = Some(PathBuf::from(value("--build-dir")?)),
                "--dynamodb-endpoint" => {
                    options.dynamodb_endpoint = Some(value("--dynamodb-endpoint")?)
                }
                "--max-instances" => {
                    options.max_instances = value("--max-instances")?
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            format!("--max-instances takes a positive number\n{USAGE}")
                        })?
                }
                "--parameter-overrides" => {
                    let first = value("--parameter-overrides")?;
                    let mut pairs = vec![first];
                    while let Some(next) = args.peek() {
                        if next.starts_with("--") {
                            break;
                        }
                        pairs.push(args.next().cloned().unwrap_or_default());
                    }
                    for pair in pairs {
                        let (name, value) = pair.split_once('=').ok_or_else(|| {
                            format!("--parameter-overrides takes NAME=VALUE, got {pair:?}")
                        })?;
                        options.parameters.insert(name.to_owned(), value.to_owned());
                    }
                }
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        Ok(options)
    }
}

/// The checkout whose scripts install and start what the emulation needs: the
/// current directory or the nearest parent with `scripts/tools.sh`, else this crate's.
fn repo_root() -> PathBuf {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        if d.join("scripts/tools.sh").is_file() {
            return d;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The repository's `template.yaml`.
fn default_template() -> PathBuf {
    repo_root().join("template.yaml")
}

/// A random secret in the shape the template's `GenerateSecretString` asks for:
/// letters and digits.
pub fn generate_secret(length: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric.sample_string(&mut rand::rng(), length)
}

/// `local emulate`: prepares everything, serves until Ctrl-C.
pub async fn main(args: &[String]) -> Result<(), String> {
    let options = Options::parse(args)?;
    let repo = repo_root();
    let locals = template::Locals {
        parameters: options.parameters.clone(),
        stack_name: "local".into(),
        secret: generate_secret(64),
    };
    let template = Template::load(&options.template, &locals).map_err(|e| e.to_string())?;

    let build_dir = match &options.build_dir {
        Some(dir) => dir.clone(),
        None => setup::sam_build(&repo, &options.parameters).await?,
    };
    let dynamodb = setup::dynamodb(&repo, &options, &template).await?;
    let api = Api::new(
        &template,
        &Setup {
            build_dir,
            environment: BTreeMap::from([(
                "DYNAMODB_ENDPOINT".to_owned(),
                dynamodb.endpoint.clone(),
            )]),
            credentials: dynamodb.credentials.clone(),
            max_instances: options.max_instances,
            throttle: template.throttle,
        },
    )?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", options.port))?;
    let api = Arc::new(api);
    for route in &template.routes {
        tracing::info!(target: "emulate", "route {} → {}", route.key(), route.function);
    }
    println!(
        "Emulated API of {} on http://localhost:{} (DynamoDB at {}; Ctrl-C stops it)",
        options.template.display(),
        options.port,
        dynamodb.endpoint
    );
    tokio::select! {
        served = api.clone().serve(listener) => served.map_err(|e| e.to_string())?,
        _ = stop_signal() => tracing::info!(target: "emulate", "shutting down"),
    }
    drop(api);
    drop(dynamodb);
    Ok(())
}
