//! What the auth function logs in Lambda (debug, JSON; and the real binary at trace):
//! one access line per request, never a password, token, refresh token, hash or secret.

use std::cell::Cell;
use std::io::Write;
use std::sync::{Arc, Mutex};

use domain::Username;
use edge::telemetry::{Format, subscriber};
use serde_json::{Value, json};
use stores::Stores;
use testkit::*;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

thread_local! {
    static UNDER_TEST: Cell<bool> = const { Cell::new(false) };
}

/// What threads marked [`UNDER_TEST`] log: the test's own runtime threads (bcrypt's
/// blocking pool included), not those of other tests sharing this process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if UNDER_TEST.with(Cell::get) {
            self.0.lock().unwrap().extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("logs are UTF-8")
    }
}

/// The tokens a sign-in and sign-out handed out: those of the login, then those of
/// the refresh.
struct Handed {
    token: String,
    refresh_token: String,
    new_token: String,
    new_refresh_token: String,
}

const PASSWORD: &str = "securePassword123";
const WRONG_PASSWORD: &str = "wrong-password-1";

/// The register, login, validate, refresh and logout events sent through `call`,
/// which answers a status and a body; each asserted to be answered 200.
async fn sign_in_and_out(mut call: impl AsyncFnMut(Value) -> (u64, Value)) -> Handed {
    let (status, body) = call(event("auth-register")).await;
    assert_eq!(status, 200, "{body}");
    let (status, login) = call(event("auth-login")).await;
    assert_eq!(status, 200, "{login}");
    let token = login["token"].as_str().unwrap().to_owned();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = call(with_body(
        event("auth-validate"),
        &json!({ "token": token }),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, refreshed) = call(with_body(
        event("auth-refresh"),
        &json!({ "refresh_token": refresh_token }),
    ))
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let new_token = refreshed["token"].as_str().unwrap().to_owned();
    let new_refresh_token = refreshed["refresh_token"].as_str().unwrap().to_owned();
    let (status, body) = call(with_header(
        with_body(
            event("auth-logout"),
            &json!({ "refresh_token": new_refresh_token }),
        ),
        "authorization",
        &format!("Bearer {new_token}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    Handed {
        token,
        refresh_token,
        new_token,
        new_refresh_token,
    }
}

/// A login of alice with [`WRONG_PASSWORD`].
fn wrong_login() -> Value {
    with_body(
        event("auth-login"),
        &json!({"username": "alice", "password": WRONG_PASSWORD}),
    )
}

impl Handed {
    /// What must never be logged (named): the passwords, the tokens handed out, the
    /// signing secret.
    fn secrets(self) -> Vec<(&'static str, String)> {
        let signature = self.token.rsplit('.').next().unwrap().to_owned();
        vec![
            ("password", PASSWORD.to_owned()),
            ("wrong password", WRONG_PASSWORD.to_owned()),
            ("access token", self.token),
            ("access token signature", signature),
            ("refreshed access token", self.new_token),
            ("refresh token", self.refresh_token),
            ("new refresh token", self.new_refresh_token),
            ("signing secret", SECRET.to_owned()),
        ]
    }
}

#[test]
fn lambda_logs_are_json_lines_with_request_ids_and_routes_and_no_secrets() {
    let mark = || UNDER_TEST.with(|under_test| under_test.set(true));
    mark();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .on_thread_start(mark)
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(lambda_logs());
}

async fn lambda_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    subscriber(Format::Json, EnvFilter::new("debug"), move || {
        writer.clone()
    })
    .try_init()
    .expect("the only subscriber of this test binary");

    let stores = Stores::memory();
    let accounts = stores.accounts.clone();
    let app = auth::router(auth::AppState::new(&stores, tokens(), &config(&[])));
    let handed = sign_in_and_out(async |event| {
        let reply = invoke(app.clone(), event).await;
        (reply.status.into(), reply.body)
    })
    .await;
    let wrong = invoke(
        app.clone(),
        with_header(wrong_login(), "x-request-id", "chosen-by-the-client"),
    )
    .await;
    assert_eq!(wrong.status, 401);

    tracing::debug!(target: "auth", "debug probe");

    let hash = accounts
        .find_by_username(&Username::parse("alice").unwrap())
        .await
        .unwrap()
        .expect("alice is stored")
        .password_hash;
    let text = logs.text();
    let lines: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    let expected = [
        ("REQ-auth-register", "/api/register", 200),
        ("REQ-auth-login", "/api/login", 200),
        ("REQ-auth-validate", "/api/validate", 200),
        ("REQ-auth-refresh", "/api/refresh", 200),
        ("REQ-auth-logout", "/api/logout", 200),
        ("REQ-auth-login", "/api/login", 401),
    ];
    assert_eq!(access.len(), expected.len(), "{access:#?}");
    for (line, (id, route, status)) in access.iter().zip(expected) {
        assert_eq!(line["request_id"], id, "{line}");
        assert_eq!(line["method"], "POST", "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["level"], "INFO", "{line}");
        let latency: f64 = line["latency_ms"].as_str().unwrap().parse().unwrap();
        assert!(latency >= 0.0, "{line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "DEBUG" && l["message"] == "debug probe"),
        "debug level is on, so the check below means something"
    );
    let mut secrets = handed.secrets();
    secrets.push(("bcrypt hash salt and digest", hash[7..].to_owned()));
    secrets.push(("bcrypt hash", hash));
    for (what, secret) in secrets {
        assert!(
            !text.contains(&secret),
            "the {what} is in the logs:\n{text}"
        );
    }
    assert!(
        !text.contains("$2b$"),
        "a bcrypt hash is in the logs:\n{text}"
    );
}

/// The register, login, validate, refresh, logout and wrong-password events answered
/// by the real binary with `RUST_LOG=trace`; returns what it logged and every secret
/// the flow handed out.
async fn trace_logs_of_the_binary(format: Option<&str>) -> (String, Vec<(&'static str, String)>) {
    let runtime = testkit::RuntimeApi::start().await;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_auth"));
    cmd.env_clear()
        .envs(runtime.env("auth"))
        .envs([
            ("JWT_SECRET", SECRET),
            ("BCRYPT_COST", "4"),
            ("STORE", "memory"),
            ("RUST_LOG", "trace"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(format) = format {
        cmd.env("AWS_LAMBDA_LOG_FORMAT", format);
    }
    let child = cmd.spawn().expect("the auth binary starts");
    let wait = std::time::Duration::from_secs(30);
    let mut call = async |event: Value| {
        let answer = runtime.invoke(event, wait).await.expect("an answer");
        let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
        (answer["statusCode"].as_u64().unwrap(), body)
    };
    let handed = sign_in_and_out(&mut call).await;
    let (status, _) = call(wrong_login()).await;
    assert_eq!(status, 401);

    let mut child = child;
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (logs, handed.secrets())
}

#[tokio::test]
async fn at_trace_level_the_lambda_binary_logs_no_password_token_hash_or_secret() {
    for format in [None, Some("JSON")] {
        let (logs, secrets) = trace_logs_of_the_binary(format).await;
        assert!(
            logs.contains("DEBUG"),
            "{format:?}: RUST_LOG=trace is taken (other crates' debug lines pass):\n{logs}"
        );
        assert!(
            logs.contains("REQ-auth-logout"),
            "{format:?}: access lines:\n{logs}"
        );
        for (what, secret) in &secrets {
            assert!(
                !logs.contains(secret.as_str()),
                "{format:?}: the {what} is in the logs:\n{logs}"
            );
        }
        for shape in ["$2b$", "$2y$", "eyJ"] {
            assert!(
                !logs.contains(shape),
                "{format:?}: {shape} in the logs:\n{logs}"
            );
        }
        assert!(
            !logs.contains('\u{1b}'),
            "{format:?}: ANSI codes in the logs"
        );
    }
}
