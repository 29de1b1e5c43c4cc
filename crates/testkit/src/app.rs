//! One-shot requests into a router (every answer must be JSON), the API's register and
//! login calls, tokens for any user, and the route table check.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use stores::{AccountStore, SessionStore};
use tokens::{Claims, Tokens};

/// What a router answered, its body parsed as JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

/// A reply equals the (status, body) it is expected to be, whatever its headers.
impl PartialEq<(StatusCode, Value)> for Reply {
    fn eq(&self, (status, body): &(StatusCode, Value)) -> bool {
        self.status == *status && self.body == *body
    }
}

/// Sends `request` into `router`, asserting that the answer is JSON.
pub async fn send(router: &Router, request: Request<Body>) -> Reply {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        content_type.starts_with("application/json"),
        "every answer is JSON, got {content_type:?} for {status}: {bytes:?}"
    );
    Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap(),
    }
}

/// [`send`]s a POST of `body` as JSON to `path`.
pub async fn post(router: &Router, path: &str, body: Value) -> Reply {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    send(router, request).await
}

/// [`send`]s a GET of `path`.
pub async fn get(router: &Router, path: &str) -> Reply {
    send(router, Request::get(path).body(Body::empty()).unwrap()).await
}

/// Registers an account through `router`'s `/register`.
pub async fn register(router: &Router, username: &str, email: &str, password: &str) -> Reply {
    post(
        router,
        "/register",
        json!({"username": username, "email": email, "password": password}),
    )
    .await
}

/// Logs in through `router`'s `/login`.
pub async fn login(router: &Router, username: &str, password: &str) -> Reply {
    post(
        router,
        "/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// A valid access token from `tokens` for `user_id` (a UUID), in a new live session
/// started through in-memory `accounts` and `sessions` ([`start_session_now`]).
pub fn token(
    tokens: &Tokens,
    accounts: &dyn AccountStore,
    sessions: &dyn SessionStore,
    user_id: &str,
    username: &str,
) -> String {
    let user_id = Uuid::parse_str(user_id).unwrap();
    let sid = start_session_now(accounts, sessions, user_id, username, 24 * 3600);
    tokens.issue(user_id, username, sid).unwrap().token
}

/// [`start_session`] on in-memory stores, whose calls never wait: run to completion
/// on the calling thread.
pub fn start_session_now(
    accounts: &dyn AccountStore,
    sessions: &dyn SessionStore,
    user_id: Uuid,
    username: &str,
    ttl_secs: i64,
) -> Uuid {
    futures::executor::block_on(start_session(
        accounts, sessions, user_id, username, ttl_secs,
    ))
}

/// A live session of `user_id` lasting `ttl_secs` from now, started through `accounts`
/// and `sessions` as a login starts one (on any store), after creating the account
/// `username` (email `<username>@example.com`) when there is none; its id, for the
/// `sid` claim.
pub async fn start_session(
    accounts: &dyn AccountStore,
    sessions: &dyn SessionStore,
    user_id: Uuid,
    username: &str,
    ttl_secs: i64,
) -> Uuid {
    use domain::refresh::RefreshSecret;
    use domain::{Email, Username};
    use stores::{Account, RefreshRecord, Session};
    let name = Username::parse(username).unwrap();
    let account = match accounts.find_by_username(&name).await.unwrap() {
        Some(account) => account,
        None => {
            let account = Account {
                user_id,
                username: name,
                email: Email::parse(&format!("{}@example.com", username.to_lowercase())).unwrap(),
                password_hash: "not a bcrypt hash: this account cannot log in".into(),
                created_at: chrono::Utc::now(),
                generation: 0,
                email_verified: false,
            };
            accounts.create(&account).await.unwrap();
            account
        }
    };
    assert_eq!(
        account.user_id, user_id,
        "{username} belongs to another user"
    );
    let now = chrono::Utc::now().timestamp();
    let session = Session {
        id: Uuid::new_v4(),
        user_id,
        username: username.to_owned(),
        started: now,
        last_used: now,
        ip: None,
        user_agent: None,
        generation: account.generation,
        expires_at: now.saturating_add(ttl_secs),
        ended_at: None,
    };
    let first = RefreshRecord {
        hash: RefreshSecret::generate().hash(),
        family: session.id,
        user_id,
        username: username.to_owned(),
        expires_at: now + 3600,
        used: false,
        used_at: None,
        generation: account.generation,
    };
    assert!(
        sessions
            .start_session(&account, &session, &first)
            .await
            .unwrap()
    );
    session.id
}

/// A valid access token from `tokens` for `user_id`, in a new session started through
/// `stores` as a login starts one (on any store), after creating the account
/// `username` (email `<username>@example.com`) when there is none.
pub async fn signed_in(
    stores: &stores::Stores,
    tokens: &Tokens,
    user_id: Uuid,
    username: &str,
) -> String {
    let sid = start_session(
        stores.accounts.as_ref(),
        stores.sessions.as_ref(),
        user_id,
        username,
        24 * 3600,
    )
    .await;
    tokens.issue(user_id, username, sid).unwrap().token
}

/// An access token correctly signed by `tokens` for `user_id` (a UUID) that expired a
/// minute ago: the claims `tokens` issues (username `late`, a session of its own), an
/// hour old.
pub fn expired_token(tokens: &Tokens, user_id: &str) -> String {
    let user_id = Uuid::parse_str(user_id).unwrap();
    let issued = tokens.issue(user_id, "late", Uuid::new_v4()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = Claims {
        iat: now - 3600,
        exp: now - 60,
        ..issued.claims
    };
    tokens.sign(&expired).unwrap()
}

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
