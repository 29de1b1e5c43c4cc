//! The `X-Request-Id` every request carries downstream and every answer carries back:
//! the client's when it is sensible, else API Gateway's, else a fresh UUID.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use uuid::Uuid;

use shared::http::{api_gateway_request_id, caller_request_id, REQUEST_ID};

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = caller_request_id(req.headers())
        .cloned()
        .or_else(|| from_api_gateway(&req))
        .unwrap_or_else(fresh);
    let name = HeaderName::from_static(REQUEST_ID);
    req.headers_mut().insert(name.clone(), id.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(name, id);
    response
}

fn from_api_gateway(req: &Request) -> Option<HeaderValue> {
    HeaderValue::from_str(api_gateway_request_id(req.extensions())?).ok()
}

fn fresh() -> HeaderValue {
    let id = Uuid::new_v4().to_string();
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
}
