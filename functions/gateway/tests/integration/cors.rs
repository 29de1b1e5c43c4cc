//! CORS: a browser page on another origin may call the API when its origin is allowed.

use testkit::http::*;

use crate::support::gateway;

const PAGE: &str = "http://localhost:5173";

/// A browser's preflight from `origin` for a PUT of a profile with a token.
async fn preflight(url: &str, origin: &str) -> reqwest::Response {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", "PUT"),
        (
            "access-control-request-headers",
            "authorization,content-type",
        ),
    ];
    fetch("OPTIONS", &format!("{url}/api/users/u1"), &headers).await
}

/// The gateway on a free port with both services at `fake` and
/// `CORS_ALLOWED_ORIGINS` set to `origins`.
async fn allowing(fake: &Fake, origins: &str) -> String {
    serve(gateway(
        &fake.url,
        &fake.url,
        &[("CORS_ALLOWED_ORIGINS", origins)],
    ))
    .await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn a_preflight_from_an_allowed_origin_is_answered_without_downstream() {
    let auth = Fake::healthy().await;
    let users = Fake::healthy().await;
    let url = serve(gateway(
        &auth.url,
        &users.url,
        &[(
            "CORS_ALLOWED_ORIGINS",
            "https://app.example, http://localhost:5173",
        )],
    ))
    .await;
    let response = preflight(&url, PAGE).await;
    assert!(
        matches!(response.status().as_u16(), 200 | 204),
        "{}",
        response.status()
    );
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
    let methods = header(&response, "access-control-allow-methods").unwrap();
    for method in ["GET", "POST", "PUT", "DELETE", "OPTIONS"] {
        assert!(methods.contains(method), "{methods}");
    }
    let headers = header(&response, "access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "x-request-id"] {
        assert!(headers.contains(name), "{headers}");
    }
    assert!(header(&response, "access-control-max-age").is_some());
    assert!(header(&response, "x-request-id").is_some());
    assert!(users.received().is_empty() && auth.received().is_empty());
}

#[tokio::test]
async fn an_allowed_origin_can_read_the_answer_and_its_exposed_headers() {
    let auth = Fake::healthy().await;
    let users = Fake::start(
        Reply::json(200, serde_json::json!([])).with_header("x-next-cursor", "next-page"),
    )
    .await;
    let url = serve(gateway(
        &auth.url,
        &users.url,
        &[("CORS_ALLOWED_ORIGINS", "http://localhost:5173")],
    ))
    .await;
    let headers = [("origin", PAGE), ("authorization", "Bearer t")];
    let response = fetch("GET", &format!("{url}/api/users"), &headers).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "access-control-allow-origin"), Some(PAGE));
    let exposed = header(&response, "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    for name in ["x-request-id", "x-next-cursor", "retry-after"] {
        assert!(exposed.contains(name), "{name} not in {exposed}");
    }
    assert_eq!(users.only().header("origin"), None);
}

#[tokio::test]
async fn an_origin_outside_the_list_gets_no_allow_origin() {
    let fake = Fake::healthy().await;
    let url = allowing(&fake, "https://app.example").await;
    let response = preflight(&url, "https://evil.example").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let evil = [("origin", "https://evil.example")];
    let response = fetch("GET", &format!("{url}/"), &evil).await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn an_options_request_that_is_no_preflight_gets_the_routes_405_json() {
    let fake = Fake::healthy().await;
    let url = allowing(&fake, "*").await;
    for origin in [None, Some(PAGE)] {
        let headers: Vec<_> = origin
            .map(|origin| ("origin", origin))
            .into_iter()
            .collect();
        let (status, _, body) = read(fetch("OPTIONS", &format!("{url}/"), &headers).await).await;
        assert_eq!(status, 405, "Origin {origin:?}: {body}");
        assert_eq!(body["status"], "405", "Origin {origin:?}: {body}");
    }
    assert!(fake.received().is_empty());
    let response = preflight(&url, PAGE).await;
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn a_star_allows_any_origin() {
    let fake = Fake::healthy().await;
    let url = allowing(&fake, "*").await;
    let response = preflight(&url, "https://anywhere.example").await;
    assert!(matches!(response.status().as_u16(), 200 | 204));
    assert_eq!(header(&response, "access-control-allow-origin"), Some("*"));
}

#[tokio::test]
async fn without_allowed_origins_no_cors_headers_are_sent() {
    let fake = Fake::healthy().await;
    for extra in [
        &[][..],
        &[("CORS_ALLOWED_ORIGINS", "")],
        &[("CORS_ALLOWED_ORIGINS", " , ")],
    ] {
        let url = serve(gateway(&fake.url, &fake.url, extra)).await;
        let response = fetch("GET", &format!("{url}/"), &[("origin", PAGE)]).await;
        assert_eq!(response.status(), 200);
        assert!(
            response
                .headers()
                .keys()
                .all(|name| !name.as_str().starts_with("access-control-")),
            "{extra:?}: {:?}",
            response.headers()
        );
        let response = preflight(&url, PAGE).await;
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{extra:?}"
        );
    }
}

/// Every header a response of openapi.json declares (names in lower case).
fn documented_response_headers() -> std::collections::BTreeSet<String> {
    fn walk(node: &serde_json::Value, found: &mut std::collections::BTreeSet<String>) {
        match node {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::Object(headers)) = map.get("headers") {
                    found.extend(headers.keys().map(|k| k.to_ascii_lowercase()));
                }
                map.values().for_each(|v| walk(v, found));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let doc: serde_json::Value = serde_json::from_str(gateway::OPENAPI).unwrap();
    let mut found = std::collections::BTreeSet::new();
    walk(&doc["paths"], &mut found);
    walk(&doc["components"], &mut found);
    found
}

/// The CORS-safelisted response headers (Fetch standard): browsers show them to scripts
/// without `Access-Control-Expose-Headers`.
const SAFELISTED_RESPONSE_HEADERS: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

#[test]
fn every_response_header_the_api_documents_is_exposed_to_browsers() {
    let documented = documented_response_headers();
    assert!(documented.contains("x-next-cursor"), "{documented:?}");
    let exposed: Vec<String> = gateway::EXPOSED_HEADERS
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let missing: Vec<_> = documented
        .iter()
        .filter(|h| !exposed.contains(h) && !SAFELISTED_RESPONSE_HEADERS.contains(&h.as_str()))
        .collect();
    assert!(missing.is_empty(), "not exposed: {missing:?}");
}
