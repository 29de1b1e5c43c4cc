//! HTTP-level test helpers (feature `testing`): a router on a free port, raw and JSON
//! requests, sign-up over HTTP, and stand-in downstream services.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The password every user signed up by [`sign_up`] has.
pub const PASSWORD: &str = "securePassword123";

/// Serves `app` on a free loopback port until the test ends; returns its base URL.
pub async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service).await.unwrap();
    });
    format!("http://{addr}")
}

/// Sends `method target` to `base` byte for byte (no URL parsing, so dot segments stay
/// as written) and returns the status and the JSON body; fails unless it is JSON.
pub async fn raw_request(base: &str, method: &str, target: &str) -> (u16, Value) {
    raw_request_with(base, method, target, &[]).await
}

/// [`raw_request`] with extra request headers.
pub async fn raw_request_with(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {addr}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("content-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("an answer within 10 s")
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{method} {target}: not JSON: {answer}"
    );
    let body = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"));
    (status, body)
}

/// A plain HTTP client that ignores any proxy settings of the machine.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `method url` with `headers` and no body; the answer as it came, whatever its type.
pub async fn fetch(method: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().request(method.parse().unwrap(), url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// `POST url` with `body` as JSON; the answer as it came, whatever its type.
pub async fn post_json(url: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// What a stand-in service received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How a stand-in service answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
}

#[derive(Clone, Default)]
struct Recorder {
    received: Arc<Mutex<Vec<Received>>>,
    reply: Arc<Mutex<Option<Reply>>>,
}

/// A downstream service that records every request and answers with its current reply.
pub struct Fake {
    pub url: String,
    recorder: Recorder,
}

impl Fake {
    pub async fn start(reply: Reply) -> Self {
        let recorder = Recorder::default();
        *recorder.reply.lock().unwrap() = Some(reply);
        let app = Router::new().fallback(record).with_state(recorder.clone());
        Self {
            url: serve(app).await,
            recorder,
        }
    }

    /// A stand-in that answers its health check and every other request with 200 `{}`.
    pub async fn healthy() -> Self {
        Self::start(Reply::json(200, json!({"status": "ok"}))).await
    }

    pub fn answer(&self, reply: Reply) {
        *self.recorder.reply.lock().unwrap() = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.recorder.received.lock().unwrap().clone()
    }

    /// The one request received; fails when there was not exactly one.
    pub fn only(&self) -> Received {
        let received = self.received();
        assert_eq!(received.len(), 1, "expected one request, got {received:?}");
        received.into_iter().next().unwrap()
    }
}

async fn record(State(recorder): State<Recorder>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    recorder.received.lock().unwrap().push(Received {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        body: body.to_vec(),
    });
    let reply = recorder.reply.lock().unwrap().clone().unwrap();
    let mut response = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap())
        .header("content-type", reply.content_type);
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from(reply.body))
        .unwrap()
        .into_response()
}

/// A loopback URL nothing listens on.
pub async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// A server that accepts connections and reads requests but never answers.
pub async fn silent_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            held.push(socket);
        }
    });
    format!("http://{addr}")
}

/// A server that promises a longer body than it sends, then hangs up.
pub async fn truncating_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"user_id\":",
                )
                .await;
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{addr}")
}

/// Status, headers and JSON body of an answer; fails unless the body is JSON.
pub async fn read(response: reqwest::Response) -> (u16, HeaderMap, Value) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.bytes().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "every answer is JSON, got {content_type:?} for {status}: {bytes:?}"
    );
    (status, headers, serde_json::from_slice(&bytes).unwrap())
}

/// `method url` with a bearer `token` and a JSON `body` if given; the status, headers and
/// JSON body of the answer, which must come within 30 s.
pub async fn send(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, HeaderMap, Value) {
    let mut request = client()
        .request(method.parse().unwrap(), url)
        .timeout(Duration::from_secs(30));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    read(request.send().await.expect("an answer, not a hang")).await
}

/// [`send`] without the headers.
pub async fn call(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let (status, _, body) = send(method, url, token, body).await;
    (status, body)
}

/// Registers `username` (email `<username>@example.com`, password [`PASSWORD`]) and
/// logs in at `api` (auth's URL, or a gateway's with `/api`); (user id, token).
pub async fn sign_up(api: &str, username: &str) -> (String, String) {
    let (status, registered) = call(
        "POST",
        format!("{api}/register"),
        None,
        Some(
            json!({"username": username, "email": format!("{username}@example.com"),
                    "password": PASSWORD}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    let (status, login) = log_in(api, username).await;
    assert_eq!(status, 200, "{login}");
    (
        registered["user_id"].as_str().unwrap().to_owned(),
        login["token"].as_str().unwrap().to_owned(),
    )
}

/// The query of a page of `GET /users`: `limit` and the `cursor` of the page before,
/// each when given.
pub fn listing_query(limit: Option<usize>, cursor: Option<&str>) -> String {
    let limit = limit.map(|limit| format!("limit={limit}"));
    let cursor = cursor.map(|cursor| format!("cursor={cursor}"));
    limit
        .into_iter()
        .chain(cursor)
        .collect::<Vec<_>>()
        .join("&")
}

/// Logs `username` in at `api` (auth's URL, or a gateway's with `/api`) with
/// [`PASSWORD`]: the status and JSON body of the answer.
pub async fn log_in(api: &str, username: &str) -> (u16, Value) {
    let credentials = json!({"username": username, "password": PASSWORD});
    call("POST", format!("{api}/login"), None, Some(credentials)).await
}

/// The spec's gateway health body, without the `downstream` field: the example under
/// `## gateway` in docs/api.md, so that the tests hold the gateway's answer to its
/// documentation rather than to a second copy of the body kept here.
pub fn spec_health() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let (_, gateway) = text
        .split_once("\n## gateway\n")
        .expect("docs/api.md has a gateway section");
    let (_, example) = gateway
        .split_once("```json\n")
        .expect("the gateway section shows its health body");
    let (example, _) = example.split_once("```").expect("a closed code block");
    let mut body: Value = serde_json::from_str(example).expect("the health body is JSON");
    body.as_object_mut()
        .expect("the health body is an object")
        .shift_remove("downstream");
    body
}
