//! CORS behind the edge ([`super::finish_with`]): the layer for preflights, and for the
//! rest the headers it would add, added without it when they are the same for every
//! request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::Response;
use axum::routing::Route;
use axum::routing::future::RouteFuture;
use futures_util::FutureExt;
use tower::{Layer, Service};
use tower_http::cors::{Cors, CorsLayer};

/// The headers `cors` adds to an answer that is no preflight when they are the same
/// whatever the request (its allowed origin is `*`), found by asking the layer itself
/// about requests from two origins and from none; `None` when they differ (a list of
/// origins), and then every request goes through the layer.
pub(super) fn constant_cors_headers(cors: &CorsLayer) -> Option<HeaderMap> {
    let added = |origin: Option<&'static str>| -> Option<HeaderMap> {
        let mut layered = cors.layer(tower::service_fn(|_: Request| async {
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        }));
        let mut request = Request::new(axum::body::Body::empty());
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert(ORIGIN, HeaderValue::from_static(origin));
        }
        let answer = layered.call(request).now_or_never()?;
        answer.ok().map(|response| response.headers().clone())
    };
    let from_one = added(Some("https://one.invalid"))?;
    let constant = from_one.contains_key(ACCESS_CONTROL_ALLOW_ORIGIN)
        && added(Some("https://two.invalid"))? == from_one
        && added(None)? == from_one;
    constant.then_some(from_one)
}

/// Adds `cors` (see [`constant_cors_headers`]) to `response` as the CORS layer would:
/// `Vary` after the answer's own, every other header in place of the answer's.
fn add_cors_headers(response: &mut Response, cors: &HeaderMap) {
    let headers = response.headers_mut();
    for (name, value) in cors {
        if name == VARY {
            headers.append(name, value.clone());
        } else {
            headers.insert(name, value.clone());
        }
    }
}

/// A route's CORS: the layer for preflights (and for every request when its headers
/// depend on the request), and the headers the rest get when they do not.
pub(super) struct CorsPolicy {
    pub(super) layered: Cors<Route>,
    pub(super) constant: Option<Arc<HeaderMap>>,
}

/// CORS, when the function has it, for every request but an `OPTIONS` that is no
/// preflight, which goes straight to the route (see [`super::finish_with`]). Cloned for every
/// request (as axum clones each route), so the policy is shared.
#[derive(Clone)]
pub(super) struct PreflightCors {
    pub(super) cors: Option<Arc<CorsPolicy>>,
    pub(super) plain: Route,
}

impl Service<Request> for PreflightCors {
    type Response = Response;
    type Error = Infallible;
    type Future = Routed;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<Request>::poll_ready(&mut self.plain, cx)
    }

    fn call(&mut self, req: Request) -> Routed {
        let Some(cors) = &self.cors else {
            return Routed::Plain(self.plain.call(req));
        };
        let preflight = req.method() == Method::OPTIONS;
        if preflight && !req.headers().contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
            return Routed::Plain(self.plain.call(req));
        }
        match &cors.constant {
            Some(headers) if !preflight => {
                Routed::WithHeaders(self.plain.call(req), headers.clone())
            }
            // Ready without asking: a route always is, and so is the layer over it.
            _ => Routed::Cors(cors.layered.clone().call(req)),
        }
    }
}

/// The future of [`PreflightCors`]: the CORS layer's, the route's as it is, or the
/// route's with constant CORS headers added; each polled in place.
pub(super) enum Routed {
    Cors(<Cors<Route> as Service<Request>>::Future),
    Plain(RouteFuture<Infallible>),
    WithHeaders(RouteFuture<Infallible>, Arc<HeaderMap>),
}

impl Future for Routed {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Self::Cors(future) => Pin::new(future).poll(cx),
            Self::Plain(future) => Pin::new(future).poll(cx),
            Self::WithHeaders(future, headers) => {
                Pin::new(future).poll(cx).map_ok(|mut response| {
                    add_cors_headers(&mut response, headers);
                    response
                })
            }
        }
    }
}
