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
use serde_json::{json, Value};
use uuid::Uuid;

use local::{Ports, Stack};
use shared::store::{Cursor, Page, Profile, ProfilePatch, ProfileStore, Stores, WriteGuard};
use shared::testing::dynamodb::TempTables;
use shared::testing::error;
use shared::testing::http::{self, serve, PASSWORD};
use shared::{Config, Error};

use crate::support::on_tables;

const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);
const TIMEOUTS: [(&str, &str); 2] = [("REQUEST_TIMEOUT_MS", "800"), ("CONNECT_TIMEOUT_MS", "300")];
/// What a paused store may add on top of the timeout before the answer is late.
const MARGIN: Duration = Duration::from_millis(1200);

/// [`shared::testing::config`] with [`TIMEOUTS`] under `pairs`.
fn config(pairs: &[(&str, &str)]) -> Config {
    shared::testing::config(&[TIMEOUTS.as_slice(), pairs].concat())
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
    /// moto served one request at a time by `scripts/moto_serial.py`, as scripts/test.sh
    /// serves it.
    fn start(python: &PathBuf) -> Self {
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let launcher = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/moto_serial.py");
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
            let (status, body, _) = call(
                "PUT",
                format!("{gw}/api/users/{id}"),
                Some(token),
                Some(json!({ "bio": bio })),
            )
            .await;
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
        let (status, login, _) = call(
            "POST",
            format!("{gw}/api/login"),
            None,
            Some(json!({"username": name, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, 200, "{name} logs in again: {login}");
    }
    let (status, body, _) = call(
        "PUT",
        format!("{gw}/api/users/{first_id}"),
        Some(first_token),
        Some(json!({"bio": "after the pause"})),
    )
    .await;
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
    let (status, registered, _) = call(
        "POST",
        format!("{gw}/api/register"),
        None,
        Some(json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, 200, "{registered}");
    let id = registered["user_id"].as_str().unwrap().to_owned();
    let (_, login, _) = call(
        "POST",
        format!("{gw}/api/login"),
        None,
        Some(json!({"username": "alice", "password": PASSWORD})),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_owned();

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
        let (status, valid, _) = call(
            "POST",
            format!("{gw}/api/validate"),
            None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!((status, &valid["valid"]), (200, &json!(true)), "{valid}");
        let (status, health, _) = call("GET", format!("{}/", stack.users_url()), None, None).await;
        assert_eq!((status, &health["status"]), (200, &json!("ok")));
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_panic_under_the_shared_plumbing_is_a_500_json_and_the_server_serves_on() {
    let routes = shared::http::Routes::new()
        .route("/boom", get(boom))
        .route("/boom/{n}", get(boom_numbered))
        .route("/ok", get(|| async { axum::Json(json!({"ok": true})) }));
    let url = serve(shared::http::finish("test", routes)).await;
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
