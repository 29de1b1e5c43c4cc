//! The emulated API's pipeline, from a client's request to its answer: API Gateway's
//! part ([`crate::apigw`], [`crate::cors`], throttling), then the function's instance
//! ([`crate::lambda`]), and the answer mapped back. Beside it, the emulated SES's
//! mailbox at `/_aws/ses` ([`crate::ses`]), when there is one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Request, Response};

use crate::Error;
use crate::apigw::{self, GatewayError, Throttle};
use crate::cors::Cors;
use crate::lambda::{Failure, Function, FunctionSpec};
use crate::ses::{MAILBOX_PATH, Mailbox};
use crate::template::{Route, Template};

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
    /// The emulated SES's mailbox, answered at `/_aws/ses` ([`Api::with_mailbox`]).
    mailbox: Option<Mailbox>,
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
    /// The template's routes and CORS, and its functions over `setup`'s artifacts.
    pub fn new(template: &Template, setup: &Setup) -> Result<Self, Error> {
        let mut functions = BTreeMap::new();
        for function in &template.functions {
            let bootstrap = setup.build_dir.join(&function.id).join("bootstrap");
            if !bootstrap.is_file() {
                return Err(Error::NoBootstrap(bootstrap));
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
            mailbox: None,
        })
    }

    /// The API answering `GET` and `DELETE /_aws/ses` from `mailbox` (the SES the
    /// functions call), before any route of the template.
    pub fn with_mailbox(mut self, mailbox: Mailbox) -> Self {
        self.mailbox = Some(mailbox);
        self
    }

    /// The function with the template's logical id `id`.
    pub fn function(&self, id: &str) -> Option<&Arc<Function>> {
        self.functions.get(id)
    }

    /// The API as a router; each request needs its peer's address
    /// (`ConnectInfo<SocketAddr>`).
    pub fn router(self: Arc<Self>) -> Router {
        let mut router = Router::new();
        if let Some(mailbox) = &self.mailbox {
            router = router.route(MAILBOX_PATH, mailbox.clone().route());
        }
        router.fallback(handle).with_state(self)
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
    if let Some(cors) = &api.cors
        && crate::cors::is_preflight(&parts.method, &parts.headers)
    {
        return (cors.preflight(&parts.headers), None);
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
