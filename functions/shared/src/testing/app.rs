//! One-shot requests into a router: the route table check.

use axum::Router;
use serde_json::Value;

/// Methods probed by [`route_mismatches`].
pub const PROBED_METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// `path` with every `{param}` replaced by a UUID, as a client would send it.
pub fn concrete_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                "550e8400-e29b-41d4-a716-446655440000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether an answer is the router's own "no such route" (the JSON 404 fallback) or
/// "no such method" (405), as opposed to a handler's.
pub fn is_routing_refusal(status: u16, body: &Value) -> bool {
    status == 405 || (status == 404 && body["message"] == "Route not found")
}

/// What is wrong with the claim that `app` serves exactly `routes` (method, path) at
/// `/` and under `/api`: every listed route reaches a handler, and every other method
/// of [`PROBED_METHODS`] on a listed path is a 405 JSON. Empty when the claim holds.
pub async fn route_mismatches(app: Router, routes: &[(&str, &str)]) -> Vec<String> {
    use tower::ServiceExt;

    let mut paths: Vec<&str> = routes.iter().map(|(_, path)| *path).collect();
    paths.sort_unstable();
    paths.dedup();
    let mut wrong = Vec::new();
    for prefix in ["", "/api"] {
        for path in &paths {
            for method in PROBED_METHODS {
                let listed = routes.contains(&(method, path));
                let uri = match (*path, prefix) {
                    ("/", "") => "/".to_owned(),
                    ("/", prefix) => prefix.to_owned(),
                    (path, prefix) => format!("{prefix}{}", concrete_path(path)),
                };
                let request = axum::http::Request::builder()
                    .method(method)
                    .uri(&uri)
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{}"))
                    .expect("a valid request");
                let response = app.clone().oneshot(request).await.expect("infallible");
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let refused = is_routing_refusal(status, &body);
                if listed && refused {
                    wrong.push(format!(
                        "{method} {uri} is listed but answered {status} {body}"
                    ));
                }
                if !listed && (status != 405 || body["status"] != "405") {
                    wrong.push(format!(
                        "{method} {uri} is not listed but answered {status} {body}"
                    ));
                }
            }
        }
    }
    wrong
}
