//! The floor of a hop on this project's stack, for benchmark 1: an axum server with no
//! middleware, no logging, no circuit breaker and no checks, forwarding every request
//! to one service with the gateway's own client (`outbound::http_client`) and answering
//! with what it got. Not a product: it drops every request header but
//! `Authorization` and relays only the status, `Content-Type` and the body.
//!
//! `bare_proxy PORT UPSTREAM_URL [THREADS]`: THREADS tokio workers (default: one per
//! core; 1 is a single-threaded loop like one nginx worker).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;
use outbound::http_client::{Service, connector};
use settings::{HttpClientConfig, Url};

const TIMEOUT: Duration = Duration::from_secs(10);

async fn proxy(State(upstream): State<Arc<Service>>, req: Request) -> Response {
    let Some(target) = upstream.target(req.uri().path(), req.uri().query()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut outbound = hyper::Request::new(Full::new(Bytes::new()));
    *outbound.method_mut() = req.method().clone();
    *outbound.uri_mut() = target;
    if let Some(auth) = req.headers().get(header::AUTHORIZATION) {
        outbound
            .headers_mut()
            .insert(header::AUTHORIZATION, auth.clone());
    }
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    match upstream.call(outbound, deadline, TIMEOUT, 1 << 20).await {
        Ok(answer) => {
            let (head, body) = answer.into_parts();
            let mut response = Response::new(Body::from(body));
            *response.status_mut() = head.status;
            if let Some(kind) = head.headers.get(header::CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, kind.clone());
            }
            response
        }
        Err(failure) => (StatusCode::BAD_GATEWAY, failure.to_string()).into_response(),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some(upstream)) = (args.first(), args.get(1)) else {
        return Err("usage: bare_proxy PORT UPSTREAM_URL [THREADS]".into());
    };
    let port: u16 = port.parse()?;
    let connector = connector(&HttpClientConfig::default())?;
    let upstream = Arc::new(Service::new(
        "UPSTREAM_URL",
        &Url::parse(upstream)?,
        &connector,
    )?);
    let threads = args.get(2).map(|t| t.parse()).transpose()?;
    let runtime = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()?;
    runtime.block_on(async move {
        let app = axum::Router::new().fallback(proxy).with_state(upstream);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        axum::serve(listener, app).await?;
        Ok(())
    })
}
