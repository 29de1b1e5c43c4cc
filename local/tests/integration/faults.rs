//! Faults in the local stack: a paused DynamoDB gives 503 JSON in bounded time and loses
//! no acknowledged write; a panicking handler is a 500 JSON and the process serves on.

use std::collections::HashMap;
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::extract::Path;
use axum::routing::get;
use serde_json::{Value, json};
use uuid::Uuid;

use errors::Error;
use local::Config;
use local::{Ports, Stack};
use stores::{Cursor, Page, Profile, ProfilePatch, ProfileStore, Stores, WriteGuard};
use testkit::dynamodb::TempTables;
use testkit::error;
use testkit::http::{self, PASSWORD, serve};

use crate::support::on_tables;

const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);
const TIMEOUTS: [(&str, &str); 2] = [("REQUEST_TIMEOUT_MS", "800"), ("CONNECT_TIMEOUT_MS", "300")];
/// What a paused store may add on top of the timeout before the answer is late.
const MARGIN: Duration = Duration::from_millis(1200);

/// [`testkit::config`] with [`TIMEOUTS`] under `pairs`.
fn config(pairs: &[(&str, &str)]) -> Config {
    testkit::config(&[TIMEOUTS.as_slice(), pairs].concat())
}

/// The local stack on free ports, configured by [`config`]`(pairs)`.
async fn start(pairs: &[(&str, &str)]) -> Stack {
    local::start(&config(pairs), Ports::ANY).await.unwrap()
}

/// [`http::call`], and how long the answer took.
async fn call(
    method: &str,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, Duration) {
    let started = Instant::now();
    let (status, body) = http::call(method, url, token, body).await;
    (status, body, started.elapsed())
}

/// Signs up through the gateway and creates the profile; (user id, token).
async fn sign_up(gw: &str, name: &str) -> (String, String) {
    let (id, token) = http::sign_up(&format!("{gw}/api"), name).await;
    let (status, created, _) = call(
        "POST",
        format!("{gw}/api/users"),
        Some(&token),
        Some(
            json!({"user_id": id, "username": name, "email": format!("{name}@example.com"),
                    "full_name": name, "bio": "first"}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    (id, token)
}

/// `PUT /api/users/{id}` of `bio` through the gateway at `gw` with `token`.
async fn put_bio(gw: &str, id: &str, token: &str, bio: &str) -> (u16, Value, Duration) {
    let body = Some(json!({ "bio": bio }));
    call("PUT", format!("{gw}/api/users/{id}"), Some(token), body).await
}

/// Asserts that auth, asked through the gateway at `gw`, finds `token` valid.
async fn assert_still_valid(gw: &str, token: &str) {
    let body = Some(json!({ "token": token }));
    let (status, valid, _) = call("POST", format!("{gw}/api/validate"), None, body).await;
    assert_eq!((status, &valid["valid"]), (200, &json!(true)), "{valid}");
}

/// The Python of the tools venv that has moto (the venv's `bin` on PATH, as
/// scripts/test.sh puts it, else the repo's `.tools/venv`); `None` (the test skips
/// loudly) outside CI when there is none.
fn moto_python() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    let repo_venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin");
    let found = on_path
        .into_iter()
        .chain([repo_venv])
        .find(|dir| dir.join("moto_server").is_file() && dir.join("python").is_file())
        .map(|dir| dir.join("python"));
    match found {
        Some(path) => Some(path),
        None if std::env::var_os("CI").is_some() => {
            panic!("moto is not on PATH: this test needs it (run scripts/test.sh)")
        }
        None => {
            eprintln!("\n*** SKIPPED: moto is not on PATH; run scripts/test.sh ***\n");
            None
        }
    }
}

/// A moto server of this test's own; dropping it resumes and kills it, whatever the
/// test did to it.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    /// moto served one request at a time by `scripts/emulator/moto_serial.py`, as
    /// scripts/test.sh serves it.
    fn start(python: &PathBuf) -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let launcher =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/emulator/moto_serial.py");
        let child = Command::new(python)
            .arg(launcher)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto starts");
        let moto = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{}/moto-api/", moto.endpoint))
            .timeout(Duration::from_secs(1))
            .send()
            .is_err()
        {
            assert!(Instant::now() < deadline, "moto did not answer within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} failed");
    }

    fn pause(&self) {
        self.signal("-STOP");
    }

    fn resume(&self) {
        self.signal("-CONT");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn stack_on(tables: &TempTables) -> Stack {
    local::start(&on_tables(tables, &TIMEOUTS), Ports::ANY)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_dynamodb_is_a_503_in_bounded_time_and_no_acknowledged_write_is_lost() {
    let Some(python) = moto_python() else { return };
    let moto = tokio::task::block_in_place(|| Moto::start(&python));
    let tables = TempTables::create_at(&moto.endpoint).await;
    let stack = stack_on(&tables).await;
    let gw = stack.gateway_url();

    let mut users = Vec::new();
    for n in 0..4 {
        let name = format!("paused{n}");
        let (id, token) = sign_up(&gw, &name).await;
        users.push((name, id, token));
    }
    let mut acknowledged = HashMap::new();
    for round in 0..3 {
        for (name, id, token) in &users {
            let bio = format!("{name} round {round}");
            let (status, body, _) = put_bio(&gw, id, token, &bio).await;
            assert_eq!(status, 200, "{body}");
            acknowledged.insert(id.clone(), bio);
        }
    }

    moto.pause();
    let (_, first_id, first_token) = &users[0];
    let during_pause = [
        ("GET", format!("{gw}/api/users/{first_id}"), None),
        (
            "PUT",
            format!("{gw}/api/users/{first_id}"),
            Some(json!({"bio": "written while paused"})),
        ),
        ("GET", format!("{gw}/api/users"), None),
        (
            "POST",
            format!("{gw}/api/login"),
            Some(json!({"username": "paused1", "password": PASSWORD})),
        ),
        (
            "POST",
            format!("{gw}/api/register"),
            Some(
                json!({"username": "newcomer", "email": "newcomer@example.com",
                        "password": PASSWORD}),
            ),
        ),
        (
            "GET",
            format!("{}/users/{first_id}", stack.users_url()),
            None,
        ),
        (
            "POST",
            format!("{}/login", stack.auth_url()),
            Some(json!({"username": "paused2", "password": PASSWORD})),
        ),
    ];
    let mut answers = Vec::new();
    for (method, url, body) in during_pause {
        let (status, answer, took) = call(method, url.clone(), Some(first_token), body).await;
        answers.push((method, url, status, answer, took));
    }
    moto.resume();
    for (method, url, status, answer, took) in &answers {
        eprintln!("paused: {method} {url} -> {status} {answer} in {took:?}");
        assert_eq!(*status, 503, "{method} {url}: {answer}");
        assert_eq!(answer["status"], "503", "{method} {url}: {answer}");
        assert!(
            answer["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        assert!(
            *took < REQUEST_TIMEOUT + MARGIN,
            "{method} {url} took {took:?}"
        );
    }

    for (name, id, token) in &users {
        let (status, profile, _) =
            call("GET", format!("{gw}/api/users/{id}"), Some(token), None).await;
        assert_eq!(status, 200, "{profile}");
        let bio = profile["bio"].as_str().unwrap();
        if id == first_id {
            assert!(
                bio == acknowledged[id] || bio == "written while paused",
                "{name}: {bio}"
            );
        } else {
            assert_eq!(bio, acknowledged[id], "{name}");
        }
        let (status, login) = http::log_in(&format!("{gw}/api"), name).await;
        assert_eq!(status, 200, "{name} logs in again: {login}");
    }
    let (status, body, _) = put_bio(&gw, first_id, first_token, "after the pause").await;
    assert_eq!(status, 200, "{body}");
    let (_, listed, _) = call("GET", format!("{gw}/api/users"), Some(first_token), None).await;
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(users.len()),
        "{listed}"
    );

    stack.stop().await;
    tables.delete().await;
    drop(moto);
}

async fn boom() -> &'static str {
    panic!("handler bug")
}

async fn boom_numbered(Path(n): Path<u32>) -> &'static str {
    panic!("handler bug number {n}")
}

/// A profile store whose every call panics, as a bug deep in a handler would.
struct PanickingProfiles;

#[async_trait]
impl ProfileStore for PanickingProfiles {
    async fn create(&self, _: &Profile, _: &WriteGuard) -> Result<(), Error> {
        panic!("profile store bug: create")
    }
    async fn get(&self, _: Uuid) -> Result<Option<Profile>, Error> {
        panic!("profile store bug: get")
    }
    async fn update(&self, _: Uuid, _: &ProfilePatch, _: &WriteGuard) -> Result<(), Error> {
        panic!("profile store bug: update")
    }
    async fn delete(&self, _: Uuid) -> Result<(), Error> {
        panic!("profile store bug: delete")
    }
    async fn list(&self, _: usize, _: Option<Cursor>) -> Result<Page<Profile>, Error> {
        panic!("profile store bug: list")
    }
}

#[tokio::test]
async fn a_panicking_handler_is_a_500_json_and_the_stack_serves_on() {
    let config = config(&[]);
    let mut stores = Stores::from_config(&config).await.unwrap();
    stores.profiles = Arc::new(PanickingProfiles);
    let stack = local::start_with(&config, Ports::ANY, stores)
        .await
        .unwrap();
    let gw = stack.gateway_url();
    let (id, token) = http::sign_up(&format!("{gw}/api"), "alice").await;

    for round in 0..3 {
        for (method, url) in [
            ("GET", format!("{gw}/api/users/{id}")),
            ("GET", format!("{gw}/api/users")),
            ("DELETE", format!("{gw}/api/users/{id}")),
            ("GET", format!("{}/users/{id}", stack.users_url())),
        ] {
            let (status, body, _) = call(method, url.clone(), Some(&token), None).await;
            assert_eq!(
                (status, body),
                (500, error(500, "Internal server error")),
                "round {round}: {method} {url}"
            );
        }
        assert_still_valid(&gw, &token).await;
        let (status, health, _) = call("GET", format!("{}/", stack.users_url()), None, None).await;
        assert_eq!((status, &health["status"]), (200, &json!("ok")));
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_panic_under_the_shared_plumbing_is_a_500_json_and_the_server_serves_on() {
    let routes = edge::http::Routes::new()
        .route("/boom", get(boom))
        .route("/boom/{n}", get(boom_numbered))
        .route("/ok", get(|| async { axum::Json(json!({"ok": true})) }));
    let url = serve(edge::http::finish("test", routes)).await;
    for round in 0..5 {
        for path in ["/boom", "/api/boom", "/boom/7"] {
            let (status, body, _) = call("GET", format!("{url}{path}"), None, None).await;
            assert_eq!(
                (status, body),
                (500, error(500, "Internal server error")),
                "round {round}: {path}"
            );
        }
        let (status, body, _) = call("GET", format!("{url}/ok"), None, None).await;
        assert_eq!((status, body), (200, json!({"ok": true})), "round {round}");
    }
}

/// Fifty wrong passwords at once from one address, within its limit, used to queue
/// bcrypt past the gateway's timeout: the auth breaker opened and everyone's
/// `/validate` answered 503. Now logins past the bcrypt slots are shed at once (503
/// with `Retry-After`), which the gateway relays as answers: its breaker stays closed
/// and another user's token still validates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_wrong_passwords_at_once_leave_auth_to_everyone_else() {
    let stack = start(&[
        ("BCRYPT_COST", "9"),
        ("BCRYPT_CONCURRENCY", "2"),
        ("BCRYPT_QUEUE_MS", "100"),
    ])
    .await;
    let gw = stack.gateway_url();
    let (_, token) = http::sign_up(&format!("{gw}/api"), "bystander").await;
    let guesses = (0..50).map(|i| {
        let url = format!("{gw}/api/login");
        tokio::spawn(async move {
            let response = http::client()
                .post(url)
                .json(&json!({"username": format!("victim{i}"), "password": "wrong-password"}))
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = response.status().as_u16();
            (status, retry_after, response.json::<Value>().await.unwrap())
        })
    });
    let replies: Vec<(u16, Option<String>, Value)> = futures_join(guesses).await;
    let statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
    let shed = replies.iter().filter(|r| r.0 == 503).count();
    assert!(
        shed > 0,
        "two bcrypt slots cannot check fifty at once: {statuses:?}"
    );
    for (status, retry_after, body) in &replies {
        match status {
            401 => assert_eq!(body, &error(401, "Invalid username or password")),
            503 => {
                assert_eq!(
                    body,
                    &error(503, "Too many password checks in progress, try again later")
                );
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            _ => panic!("{statuses:?}"),
        }
    }
    assert_still_valid(&gw, &token).await;
    let (_, health, _) = call("GET", format!("{gw}/"), None, None).await;
    assert_eq!(health["breakers"]["auth"], "closed");
    stack.stop().await;
}

/// Every reply of `tasks`, in order.
async fn futures_join<T: Send + 'static>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<T> {
    let mut replies = Vec::new();
    for task in tasks.collect::<Vec<_>>() {
        replies.push(task.await.unwrap());
    }
    replies
}

/// Asserts that the server closes `stream` within 10 s (anything it writes first, such
/// as an error answer, is read and let go); `what` names the connection.
async fn assert_closed(stream: &mut tokio::net::TcpStream, what: &str) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "{what}");
}

/// A connection to `addr` that has sent `bytes`.
async fn sent(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

/// A request head never finished and a connection that never speaks used to be held
/// forever (a few hundred of them starved the stack): each server closes both once
/// `HEADER_READ_TIMEOUT_MS` has passed, and answers others meanwhile.
#[tokio::test]
async fn an_unfinished_head_and_a_silent_connection_are_closed_by_every_server() {
    let stack = start(&[("HEADER_READ_TIMEOUT_MS", "300")]).await;
    for addr in [stack.auth, stack.users, stack.gateway] {
        let mut unfinished = sent(addr, b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Ty").await;
        let mut silent = sent(addr, b"").await;
        let (status, _, _) = call("GET", format!("http://{addr}/"), None, None).await;
        assert_eq!(status, 200, "{addr} answers others meanwhile");
        assert_closed(&mut unfinished, &format!("{addr}: unfinished head")).await;
        assert_closed(&mut silent, &format!("{addr}: silent connection")).await;
    }
    stack.stop().await;
}

/// A body that stops arriving leaves the connection silent both ways: closed after
/// `IDLE_TIMEOUT_MS`, though its head came in time.
#[tokio::test]
async fn a_body_that_stops_arriving_is_closed_after_the_idle_timeout() {
    let stack = start(&[("IDLE_TIMEOUT_MS", "300")]).await;
    for (addr, path) in [(stack.auth, "/login"), (stack.gateway, "/api/login")] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{\"username\""
        );
        let mut stalled = sent(addr, head.as_bytes()).await;
        assert_closed(&mut stalled, &format!("{addr}{path}")).await;
    }
    stack.stop().await;
}

/// Past `MAX_CONNECTIONS` a new connection waits to be accepted (its request is not
/// answered) until an open one closes; then it is served.
#[tokio::test]
async fn past_max_connections_a_new_one_waits_for_an_open_one_to_close() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stack = start(&[("MAX_CONNECTIONS", "2")]).await;
    const HEALTH: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = sent(stack.auth, HEALTH).await;
        let mut buf = [0u8; 1024];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "kept alive, answered"
        );
        open.push(stream);
    }
    let mut third = sent(stack.auth, HEALTH).await;
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "no answer while two connections are open");
    let mut first = open.remove(0);
    first.shutdown().await.unwrap();
    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("answered once a slot is free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    stack.stop().await;
}

/// An oversized request line or header section is answered in the API's JSON error
/// shape, by every server, where hyper's own answers have no body.
#[tokio::test]
async fn oversized_uris_and_headers_are_answered_in_json() {
    let stack = start(&[]).await;
    let long_path = format!("/{}", "a".repeat(9000));
    let big_header = "b".repeat(20_000);
    for url in [stack.auth_url(), stack.users_url(), stack.gateway_url()] {
        for path in [long_path.clone(), format!("/api/users{long_path}")] {
            let response = http::client()
                .get(format!("{url}{path}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 414, "{url}");
            assert_eq!(response.headers()["content-type"], "application/json");
            assert!(response.headers().contains_key("x-request-id"));
            assert_eq!(
                response.json::<Value>().await.unwrap(),
                error(414, "Request URI too long")
            );
        }
        let response = http::client()
            .get(format!("{url}/"))
            .header("x-big", big_header.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 431, "{url}");
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            error(431, "Request headers too large")
        );
    }
    stack.stop().await;
}
