//! Property tests on every parser at the boundary: arbitrary input never panics and
//! gives either a value or the right 4xx.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use proptest::prelude::*;
use serde::Deserialize;
use tower::ServiceExt;

use domain::{Email, Password, Username};
use errors::{Error, Json};
use stores::Cursor;
use testkit::tokens;
use tokens::Rejected;

fn is_bad_request(err: &Error) -> bool {
    err.status() == StatusCode::BAD_REQUEST
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Login {
    username: String,
    password: String,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn usernames_are_accepted_exactly_when_they_follow_the_rules(raw in ".{0,40}|[A-Za-z0-9_.-]{0,40}") {
        let valid = (3..=32).contains(&raw.chars().count())
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        match Username::parse(&raw) {
            Ok(u) => { prop_assert!(valid); prop_assert_eq!(u.as_str(), raw.as_str()); }
            Err(e) => { prop_assert!(!valid); prop_assert!(is_bad_request(&e)); }
        }
    }

    #[test]
    fn emails_never_panic_and_accepted_ones_are_bounded(raw in ".{0,300}|[a-z.+]{1,20}@[a-z.-]{1,20}") {
        match Email::parse(&raw) {
            Ok(e) => {
                prop_assert!(e.as_str().len() <= 254);
                prop_assert!(e.as_str().contains('@'));
                prop_assert_eq!(e.key(), raw.to_ascii_lowercase());
            }
            Err(e) => prop_assert!(is_bad_request(&e)),
        }
    }

    #[test]
    fn passwords_are_accepted_exactly_within_the_bounds(raw in ".{0,100}") {
        let valid = raw.chars().count() >= 8 && raw.len() <= 72 && !raw.contains('\0');
        match Password::parse(raw.clone()) {
            Ok(p) => { prop_assert!(valid); prop_assert_eq!(p.expose(), raw.as_str()); }
            Err(e) => { prop_assert!(!valid); prop_assert!(is_bad_request(&e)); }
        }
    }

    #[test]
    fn arbitrary_tokens_are_refused_as_invalid(raw in ".{0,600}|[A-Za-z0-9_-]{1,80}\\.[A-Za-z0-9_-]{1,200}\\.[A-Za-z0-9_-]{0,80}") {
        prop_assert_eq!(tokens().verify(&raw), Err(Rejected::Invalid));
    }

    #[test]
    fn a_tampered_token_never_verifies_with_other_claims(pos in 0usize..400, byte in any::<u8>()) {
        let t = tokens();
        let issued = t.issue(uuid::Uuid::new_v4(), "alice", uuid::Uuid::new_v4()).unwrap();
        let mut bytes = issued.token.clone().into_bytes();
        let at = pos % bytes.len();
        bytes[at] = byte;
        if let Ok(tampered) = String::from_utf8(bytes) {
            match t.verify(&tampered) {
                Ok(claims) => prop_assert_eq!(claims, issued.claims),
                Err(r) => prop_assert_eq!(r, Rejected::Invalid),
            }
        }
    }

    #[test]
    fn cursors_decode_only_what_was_encoded(raw in ".{0,200}|[A-Za-z0-9_-]{0,80}") {
        if let Ok(cursor) = Cursor::decode(&raw) {
            prop_assert_eq!(cursor.encode(), raw);
        }
    }

    #[test]
    fn json_bodies_parse_or_are_a_400(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        match errors::json::parse::<Login>(&bytes) {
            Ok(_) => prop_assert!(serde_json::from_slice::<serde_json::Value>(&bytes).map(|v| v.is_object()).unwrap_or(false)),
            Err(e) => prop_assert!(is_bad_request(&e)),
        }
    }

    #[test]
    fn json_objects_parse_exactly_when_their_fields_are_right(
        username in proptest::option::of(prop_oneof![".{0,10}".prop_map(serde_json::Value::from), any::<i64>().prop_map(serde_json::Value::from)]),
        password in proptest::option::of(".{0,10}".prop_map(serde_json::Value::from)),
        extra in "[a-z]{0,10}",
    ) {
        let mut obj = serde_json::Map::new();
        if let Some(u) = username { obj.insert("username".into(), u); }
        if let Some(p) = password { obj.insert("password".into(), p); }
        obj.entry(extra).or_insert(serde_json::Value::Null);
        let well_formed = obj.get("username").is_some_and(|v| v.is_string())
            && obj.get("password").is_some_and(|v| v.is_string());
        let bytes = serde_json::to_vec(&obj).unwrap();
        match errors::json::parse::<Login>(&bytes) {
            Ok(_) => prop_assert!(well_formed),
            Err(e) => { prop_assert!(!well_formed); prop_assert!(is_bad_request(&e)); }
        }
    }
}

fn extractor_app() -> Router {
    edge::http::finish(
        "test",
        edge::http::Routes::new().route("/login", post(|Json(_): Json<Login>| async { "ok" })),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_extractor_answers_every_body_and_content_type_with_a_4xx_or_success(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        content_type in proptest::option::of(prop_oneof![
            Just("application/json".to_owned()),
            Just("application/problem+json; charset=utf-8".to_owned()),
            Just("text/plain".to_owned()),
            "[ -~]{0,30}",
        ]),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let status = runtime.block_on(async {
            let mut request = Request::post("/login");
            if let Some(ct) = &content_type {
                request = request.header("content-type", ct.as_str());
            }
            let Ok(request) = request.body(Body::from(bytes.clone())) else { return StatusCode::BAD_REQUEST };
            extractor_app().oneshot(request).await.unwrap().status()
        });
        prop_assert!(
            [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::UNSUPPORTED_MEDIA_TYPE].contains(&status),
            "status {} for {:?}", status, content_type
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn refresh_tokens_parse_only_in_the_shape_this_service_issues(
        raw in ".{0,60}|[A-Za-z0-9_-]{43}|[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]",
    ) {
        use base64::Engine;
        match domain::refresh::RefreshSecret::parse(&raw) {
            Some(token) => {
                prop_assert_eq!(token.expose(), raw.as_str());
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&raw).unwrap();
                prop_assert_eq!(bytes.len(), domain::refresh::RefreshSecret::BYTES);
                prop_assert_eq!(token.hash().as_str().len(), 64);
            }
            None => prop_assert!(
                raw.len() != domain::refresh::RefreshSecret::CHARS
                    || !raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    || !"AEIMQUYcgkosw048".contains(raw.chars().last().unwrap_or('!'))
            ),
        }
    }

    #[test]
    fn bearer_headers_give_the_token_or_a_401(
        value in proptest::collection::vec(any::<u8>(), 0..80),
        scheme in prop_oneof![Just("Bearer "), Just("bearer "), Just("BEARER\t"), Just("Basic "), Just("")],
    ) {
        let mut bytes = scheme.as_bytes().to_vec();
        bytes.extend_from_slice(&value);
        let Ok(header) = axum::http::HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(axum::http::header::AUTHORIZATION, header);
        match edge::http::bearer_token(&headers) {
            Ok(token) => {
                let text = std::str::from_utf8(&bytes).unwrap();
                prop_assert!(!token.is_empty());
                prop_assert_eq!(token, token.trim());
                prop_assert!(text.trim().to_ascii_lowercase().starts_with("bearer"));
                prop_assert!(text.trim_end().ends_with(token));
            }
            Err(e) => prop_assert_eq!(e.status(), StatusCode::UNAUTHORIZED),
        }
    }

    #[test]
    fn forwarded_addresses_are_taken_only_when_they_parse(
        value in proptest::collection::vec(any::<u8>(), 0..80),
        tail in prop_oneof![Just(String::new()), Just(", 203.0.113.9".to_owned()), Just(",::1".to_owned())],
    ) {
        let mut bytes = value.clone();
        bytes.extend_from_slice(tail.as_bytes());
        let Ok(header) = axum::http::HeaderValue::from_bytes(&bytes) else { return Ok(()) };
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("x-forwarded-for", header);
        let mut extensions = axum::http::Extensions::new();
        let peer: std::net::SocketAddr = "127.0.0.1:4000".parse().unwrap();
        extensions.insert(axum::extract::ConnectInfo(peer));
        let proxy = |key: &str| (key == "TRUSTED_PROXIES").then(|| "127.0.0.1".to_owned());
        let trusted = edge::client_ip::TrustedProxies::read(&settings::Vars::new(&proxy)).unwrap();
        let ip = edge::client_ip::client_ip(&extensions, &headers, &trusted).expect("the peer at least");
        // A header that is not visible ASCII is not read at all.
        let text = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let last = text.and_then(|t| t.rsplit(',').next()).map(str::trim);
        match last.and_then(|l| l.parse::<std::net::IpAddr>().ok()) {
            // The trusted proxy itself, named again: the hops before it decide.
            Some(forwarded) if forwarded.to_canonical() == peer.ip() => {}
            Some(forwarded) => prop_assert_eq!(ip, forwarded.to_canonical()),
            None => prop_assert_eq!(ip, peer.ip()),
        }
    }
}
