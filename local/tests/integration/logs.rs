//! What `local` logs at debug and trace, text and JSON: one access line per request,
//! never a password, token, hash or secret, and no colour codes in a pipe.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::SECRET;
use testkit::http::PASSWORD;

/// Reads a pipe to its end, passing each line on as it comes; returns all of it.
pub(crate) fn drain(
    pipe: impl Read + Send + 'static,
    lines: mpsc::Sender<String>,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = lines.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

pub(crate) struct Local {
    child: Child,
    readers: Vec<JoinHandle<String>>,
    pub(crate) gateway: String,
}

impl Local {
    pub(crate) fn start(json: bool, rust_log: &str) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_local"));
        cmd.env_remove("STORE")
            .env_remove("AWS_LAMBDA_FUNCTION_NAME")
            .env_remove("AWS_LAMBDA_RUNTIME_API")
            .env_remove("AWS_LAMBDA_LOG_FORMAT")
            .env_remove("NO_COLOR")
            .envs([
                ("AUTH_PORT", "0"),
                ("USERS_PORT", "0"),
                ("GATEWAY_PORT", "0"),
                ("BCRYPT_COST", "4"),
                ("JWT_SECRET", SECRET),
                ("RUST_LOG", rust_log),
                // A refresh token presented twice is reuse at once (the metrics count it).
                ("REFRESH_REUSE_INTERVAL_SECS", "0"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if json {
            cmd.env("AWS_LAMBDA_LOG_FORMAT", "JSON");
        }
        let mut child = cmd.spawn().expect("local starts");
        let (tx, lines) = mpsc::channel();
        let readers = vec![
            drain(child.stdout.take().unwrap(), tx.clone()),
            drain(child.stderr.take().unwrap(), tx),
        ];
        let gateway = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .expect("local announces its gateway within 20 s");
            if let Some(url) = line
                .split("gateway service")
                .nth(1)
                .and_then(|rest| rest.split(" on ").nth(1))
            {
                break url.split('"').next().unwrap_or_default().trim().to_owned();
            }
        };
        Self {
            child,
            readers,
            gateway,
        }
    }

    /// Stops it with Ctrl-C and returns everything it wrote to stdout and stderr.
    pub(crate) fn stop(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "local exited with {status}");
        self.readers
            .drain(..)
            .map(|r| r.join().unwrap())
            .collect::<Vec<_>>()
            .join("")
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every secret the flow handed out, by name.
struct Secrets(Vec<(&'static str, String)>);

impl Secrets {
    /// Keeps the text `value`, a secret handed out, under `what`; returns the text.
    fn keep(&mut self, what: &'static str, value: &Value) -> String {
        let text = value.as_str().unwrap().to_owned();
        self.0.push((what, text.clone()));
        text
    }
}

/// A request to `{gw}{path}` with a 10 s limit, a bearer `token` and a JSON `body`
/// when given (not a null body).
pub(crate) fn request(
    gw: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::blocking::RequestBuilder {
    let client = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let mut request = client
        .request(method.parse().unwrap(), format!("{gw}{path}"))
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_null() {
        request = request.json(body);
    }
    request
}

fn call(gw: &str, id: &str, method: &str, path: &str, token: Option<&str>, body: Value) -> Value {
    let response = request(gw, method, path, token, &body)
        .header("x-request-id", id)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{method} {path}");
    response.json().unwrap()
}

/// [`call`] of the request `id` of [`EXPECTED`], at its method and gateway route.
fn step(gw: &str, id: &str, token: Option<&str>, body: Value) -> Value {
    let (_, method, route, _) = EXPECTED
        .iter()
        .find(|(expected, ..)| *expected == id)
        .expect("a request of EXPECTED");
    call(gw, id, method, route, token, body)
}

/// Register, log in, validate, refresh, create and read the profile, log out.
fn flow(gw: &str) -> Secrets {
    let mut secrets = Secrets(vec![
        ("password", PASSWORD.to_owned()),
        ("signing secret", SECRET.to_owned()),
    ]);
    let account = json!({"username": "alice", "email": "alice@example.com", "password": PASSWORD});
    let registered = step(gw, "req-register", None, account);
    let id = registered["user_id"].as_str().unwrap().to_owned();
    let credentials = json!({"username": "alice", "password": PASSWORD});
    let login = step(gw, "req-login", None, credentials);
    let token = secrets.keep("access token", &login["token"]);
    let signature = token.rsplit('.').next().unwrap().to_owned();
    secrets.0.push(("access token signature", signature));
    let refresh_token = secrets.keep("refresh token", &login["refresh_token"]);
    step(gw, "req-validate", None, json!({ "token": token }));
    let refresh = json!({ "refresh_token": refresh_token });
    let refreshed = step(gw, "req-refresh", None, refresh);
    let new_token = secrets.keep("refreshed access token", &refreshed["token"]);
    let new_refresh_token = secrets.keep("new refresh token", &refreshed["refresh_token"]);
    let profile = json!({"user_id": id, "username": "alice", "email": "alice@example.com",
                         "full_name": "Alice", "bio": ""});
    step(gw, "req-create", Some(&new_token), profile);
    let path = format!("/api/users/{id}");
    call(gw, "req-get", "GET", &path, Some(&new_token), Value::Null);
    let logout = json!({ "refresh_token": new_refresh_token });
    step(gw, "req-logout", Some(&new_token), logout);
    secrets
}

/// (request id, route at the gateway, route at the service behind it)
const EXPECTED: [(&str, &str, &str, &str); 7] = [
    ("req-register", "POST", "/api/register", "/register"),
    ("req-login", "POST", "/api/login", "/login"),
    ("req-validate", "POST", "/api/validate", "/validate"),
    ("req-refresh", "POST", "/api/refresh", "/refresh"),
    ("req-create", "POST", "/api/users", "/users"),
    ("req-get", "GET", "/api/users/{id}", "/users/{id}"),
    ("req-logout", "POST", "/api/logout", "/logout"),
];

fn assert_no_secrets(logs: &str, secrets: &Secrets) {
    for (what, secret) in &secrets.0 {
        assert!(
            !logs.contains(secret.as_str()),
            "the {what} is in the logs:\n{logs}"
        );
    }
    assert!(
        !logs.contains("$2b$"),
        "a bcrypt hash is in the logs:\n{logs}"
    );
    assert!(
        !logs.contains("eyJ"),
        "something JWT-shaped is in the logs:\n{logs}"
    );
}

#[test]
fn text_logs_have_one_access_line_per_request_and_service_and_no_secrets() {
    let local = Local::start(false, "debug");
    let secrets = flow(&local.gateway);
    let logs = local.stop();
    assert!(logs.contains("DEBUG"), "debug lines are written:\n{logs}");
    assert_no_secrets(&logs, &secrets);
    let access: Vec<&str> = logs.lines().filter(|l| l.contains(" access: ")).collect();
    for (id, method, gateway_route, service_route) in EXPECTED {
        for route in [gateway_route, service_route] {
            let matching: Vec<&&str> = access
                .iter()
                .filter(|l| {
                    l.contains(&format!("request_id=\"{id}\""))
                        && l.contains(&format!("route=\"{route}\""))
                })
                .collect();
            assert_eq!(matching.len(), 1, "{id} {route}: {access:#?}");
            let line = matching[0];
            for part in [format!("method={method}"), "status=200".to_owned()] {
                assert!(line.contains(&part), "{part} missing from {line}");
            }
            assert!(line.contains("latency_ms="), "{line}");
        }
    }
}

#[test]
fn json_logs_are_json_lines_with_the_access_fields_and_no_secrets() {
    let local = Local::start(true, "debug");
    let secrets = flow(&local.gateway);
    let logs = local.stop();
    assert_no_secrets(&logs, &secrets);
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "debug lines are written"
    );
    let access: Vec<&Value> = lines.iter().filter(|l| l["target"] == "access").collect();
    for (id, method, gateway_route, service_route) in EXPECTED {
        for route in [gateway_route, service_route] {
            let matching: Vec<&&Value> = access
                .iter()
                .filter(|l| l["request_id"] == id && l["route"] == route)
                .collect();
            assert_eq!(matching.len(), 1, "{id} {route}: {access:#?}");
            let line = matching[0];
            assert_eq!(line["method"], method, "{line}");
            assert_eq!(line["status"], 200, "{line}");
            assert_eq!(line["message"], "request", "{line}");
            let latency: f64 = line["latency_ms"].as_str().unwrap().parse().unwrap();
            assert!(latency >= 0.0, "{line}");
        }
    }
}

#[test]
fn at_trace_level_nothing_secret_is_logged_either() {
    let local = Local::start(false, "trace");
    let secrets = flow(&local.gateway);
    let logs = local.stop();
    assert!(
        logs.contains("DEBUG"),
        "trace lets debug lines through:\n{logs}"
    );
    assert_no_secrets(&logs, &secrets);
}

#[test]
fn text_logs_written_to_a_pipe_have_no_colour_codes() {
    let local = Local::start(false, "debug");
    flow(&local.gateway);
    let logs = local.stop();
    assert!(
        !logs.contains('\u{1b}'),
        "ESC bytes in logs written to a pipe:\n{logs:?}"
    );
    assert!(logs.contains(" access: "), "{logs}");
}

#[test]
fn rust_log_is_respected() {
    let local = Local::start(false, "warn,local=info");
    flow(&local.gateway);
    let logs = local.stop();
    assert!(logs.contains("gateway service"), "{logs}");
    assert!(!logs.contains(" access: "), "access lines are info: {logs}");
    assert!(!logs.contains("DEBUG"), "{logs}");
}
