//! Test support (feature `testing`): API Gateway v2 events fed through lambda_http's
//! own adapter or handed to a real function binary by a stand-in Runtime API, and the
//! switch for tests that need outside servers.

pub mod http;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::Router;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Context, LambdaEvent, Service};
use serde_json::Value;

/// The signing secret of every test that does not need its own.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// Access tokens signed with [`SECRET`], valid for a day.
pub fn tokens() -> Arc<crate::token::Tokens> {
    let secret = crate::config::Secret::new(SECRET.into()).expect("SECRET is long enough");
    Arc::new(
        crate::token::Tokens::new(&secret, std::time::Duration::from_secs(86400))
            .expect("test tokens"),
    )
}

/// The configuration `pairs` give, never the process environment; bcrypt at its
/// lowest cost unless `pairs` say otherwise.
pub fn config(pairs: &[(&str, &str)]) -> crate::Config {
    try_config(pairs).expect("test configuration is valid")
}

/// [`config`], returning the error a bad value gives.
pub fn try_config(pairs: &[(&str, &str)]) -> Result<crate::Config, crate::config::ConfigError> {
    let vars: std::collections::HashMap<&str, &str> = [("BCRYPT_COST", "4")]
        .into_iter()
        .chain(pairs.iter().copied())
        .collect();
    crate::Config::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()))
}

/// Starts the binary at `path` (named `name`) with only `env` and asserts it refuses to
/// start as every binary does: exit code [`crate::config::CANNOT_START`] within 10 s and
/// one stderr line `{name}: cannot start: ...`, which it returns.
pub fn assert_cannot_start(path: &str, name: &str, env: &[(&str, &str)]) -> String {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(path)
        .env_clear()
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {path}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(crate::config::CANNOT_START),
        "{name} with {env:?}: {stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("{name}: cannot start: ")),
        "{stderr}"
    );
    stderr
}

/// The API's error body for `status` and `message`.
pub fn error(status: u16, message: &str) -> Value {
    serde_json::json!({"status": status.to_string(), "message": message})
}

/// The repo's API Gateway HTTP API (payload v2) fixtures, in `fixtures/events/`.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/events")
}

/// A fixture by name (without `.json`), as JSON to adjust before sending.
pub fn event(name: &str) -> Value {
    let path = events_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad fixture {name}: {e}"))
}

/// Sets a fixture's body (as JSON text) and its content-length.
pub fn with_body(mut event: Value, body: &Value) -> Value {
    let text = body.to_string();
    event["headers"]["content-length"] = Value::String(text.len().to_string());
    event["body"] = Value::String(text);
    event
}

/// Sets one header of a fixture.
pub fn with_header(mut event: Value, name: &str, value: &str) -> Value {
    event["headers"][name.to_ascii_lowercase()] = Value::String(value.to_owned());
    event
}

/// What the function handed back to the Lambda runtime.
#[derive(Debug)]
pub struct LambdaReply {
    pub status: u16,
    pub headers: Value,
    pub body: Value,
    pub raw: Value,
}

/// Sends an API Gateway event through lambda_http's adapter into `app`, exactly as
/// `lambda_http::run` would, and returns the serialized Lambda response.
pub async fn invoke(app: Router, event: Value) -> LambdaReply {
    let request: LambdaRequest =
        serde_json::from_value(event).expect("fixture is a valid API Gateway event");
    let mut adapter = Adapter::from(app);
    let response = adapter
        .call(LambdaEvent::new(request, Context::default()))
        .await
        .expect("router is infallible");
    let raw = serde_json::to_value(&response).expect("response serializes");
    let status = raw["statusCode"].as_u64().unwrap_or(0) as u16;
    let body = raw["body"]
        .as_str()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_owned())))
        .unwrap_or(Value::Null);
    LambdaReply {
        status,
        headers: raw["headers"].clone(),
        body,
        raw,
    }
}

/// A stand-in for the Lambda Runtime API on a loopback port: a function binary started
/// with [`RuntimeApi::env`] polls it for the events given to [`RuntimeApi::invoke`].
pub struct RuntimeApi {
    address: String,
    events: tokio::sync::mpsc::UnboundedSender<Value>,
    answers: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>,
}

#[derive(Clone)]
struct RuntimeState {
    events: Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Value>>>,
    answers: tokio::sync::mpsc::UnboundedSender<Value>,
    invocations: Arc<AtomicU64>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        use axum::routing::{get, post};
        let (events, pending) = tokio::sync::mpsc::unbounded_channel();
        let (answered, answers) = tokio::sync::mpsc::unbounded_channel();
        let state = RuntimeState {
            events: Arc::new(tokio::sync::Mutex::new(pending)),
            answers: answered,
            invocations: Arc::default(),
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_event))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
            .route("/2018-06-01/runtime/init/error", post(answer))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let address = listener.local_addr().expect("bound").to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            address,
            events,
            answers: tokio::sync::Mutex::new(answers),
        }
    }

    /// The variables the Lambda runtime needs to start `function` against this stub.
    pub fn env(&self, function: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ]
    }

    /// Hands `event` to the function and waits up to `timeout` for what it answers
    /// (the response, or the error it reports); `None` when it does not answer.
    pub async fn invoke(&self, event: Value, timeout: std::time::Duration) -> Option<Value> {
        self.events.send(event).ok()?;
        let mut answers = self.answers.lock().await;
        tokio::time::timeout(timeout, answers.recv()).await.ok()?
    }
}

async fn next_event(
    axum::extract::State(state): axum::extract::State<RuntimeState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(event) = state.events.lock().await.recv().await else {
        return axum::http::StatusCode::GONE.into_response();
    };
    let n = state.invocations.fetch_add(1, Ordering::SeqCst) + 1;
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        + std::time::Duration::from_secs(60);
    (
        [
            ("lambda-runtime-aws-request-id", format!("invocation-{n}")),
            (
                "lambda-runtime-deadline-ms",
                deadline.as_millis().to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:eu-west-1:123456789012:function:test".to_owned(),
            ),
            ("lambda-runtime-trace-id", "Root=1-0-0".to_owned()),
        ],
        event.to_string(),
    )
        .into_response()
}

async fn answer(
    axum::extract::State(state): axum::extract::State<RuntimeState>,
    body: String,
) -> &'static str {
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    let _ = state.answers.send(value);
    "{}"
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

/// Whether a test that needs an outside server (named by `var`) should run. In CI
/// (`CI` set) a missing server is a failure; elsewhere the test is skipped loudly.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: this test needs its server (run scripts/test.sh)")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: {var} is not set; run scripts/test.sh to start the server ***\n"
            );
            None
        }
    }
}

/// Throwaway DynamoDB tables (features `testing` + `dynamodb`) on the server at
/// `DYNAMODB_ENDPOINT`, named uniquely so tests never see each other's items, and the
/// consistency check run on them before they are deleted.
#[cfg(feature = "dynamodb")]
pub mod dynamodb {
    use std::collections::HashMap;
    use std::time::Duration;

    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType, TableStatus,
    };
    use aws_sdk_dynamodb::Client;

    use crate::domain::{Email, Username};
    use crate::store::dynamodb::DynamoAccountStore;
    use crate::store::Stores;
    use crate::Config;

    type Item = HashMap<String, AttributeValue>;

    /// The attributes an account item shares with its username claim (TABLES.md).
    const ACCOUNT_ATTRIBUTES: [&str; 5] = [
        "user_id",
        "username",
        "email",
        "password_hash",
        "created_at",
    ];

    /// Every item of `table`, read with consistent scans page by page.
    pub async fn scan_all(client: &Client, table: &str) -> Vec<Item> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot scan {table}: {e:?}"));
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return items,
            }
        }
    }

    fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }

    /// What is wrong with the accounts table `table`, as laid out in TABLES.md: every
    /// `USER#` item has its `USERNAME#` claim (a full copy of it) and its `EMAIL#`
    /// claim, both holding its `user_id`; every claim points back to an account whose
    /// username or email it is (no orphan); nothing else is in the table. Empty when
    /// the table is consistent.
    pub async fn account_table_problems(client: &Client, table: &str) -> Vec<String> {
        let items: HashMap<String, Item> = scan_all(client, table)
            .await
            .into_iter()
            .map(|item| (text(&item, "pk").unwrap_or_default().to_owned(), item))
            .collect();
        let mut problems = Vec::new();
        for (pk, item) in &items {
            let user_id = text(item, "user_id").unwrap_or_default();
            if let Some(id) = pk.strip_prefix("USER#") {
                if id != user_id {
                    problems.push(format!("{pk} holds user_id {user_id:?}"));
                }
                match text(item, "username").map(Username::parse) {
                    Some(Ok(name)) => {
                        let claim_key = DynamoAccountStore::username_key(&name);
                        match items.get(&claim_key) {
                            None => problems.push(format!("{pk} has no claim {claim_key}")),
                            Some(claim) => {
                                for attribute in ACCOUNT_ATTRIBUTES {
                                    if claim.get(attribute) != item.get(attribute) {
                                        problems.push(format!(
                                            "{claim_key} differs from {pk} in {attribute}"
                                        ));
                                    }
                                }
                            }
                        }
                    }
                    _ => problems.push(format!("{pk} has no valid username")),
                }
                match text(item, "email").map(Email::parse) {
                    Some(Ok(email)) => {
                        let claim_key = DynamoAccountStore::email_key(&email);
                        match items.get(&claim_key) {
                            None => problems.push(format!("{pk} has no claim {claim_key}")),
                            Some(claim) if text(claim, "user_id") != Some(id) => {
                                problems.push(format!(
                                    "{claim_key} points to {:?}, not to {pk}",
                                    text(claim, "user_id")
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                    _ => problems.push(format!("{pk} has no valid email")),
                }
            } else if pk.starts_with("USERNAME#") || pk.starts_with("EMAIL#") {
                let account_key = format!("USER#{user_id}");
                let Some(account) = items.get(&account_key) else {
                    problems.push(format!("{pk} is orphaned: {account_key} does not exist"));
                    continue;
                };
                let claimed = if pk.starts_with("USERNAME#") {
                    text(account, "username")
                        .and_then(|name| Username::parse(name).ok())
                        .map(|name| DynamoAccountStore::username_key(&name))
                } else {
                    text(account, "email")
                        .and_then(|email| Email::parse(email).ok())
                        .map(|email| DynamoAccountStore::email_key(&email))
                };
                if claimed.as_deref() != Some(pk.as_str()) {
                    problems.push(format!(
                        "{pk} points to {account_key}, which claims {claimed:?}"
                    ));
                }
            } else {
                problems.push(format!("unexpected item {pk:?} in the accounts table"));
            }
        }
        problems.sort();
        problems
    }

    pub struct TempTables {
        pub client: Client,
        /// `STORE=dynamodb` pointed at these tables.
        pub config: Config,
    }

    impl TempTables {
        /// `None` (the test skips) when `DYNAMODB_ENDPOINT` is unset outside CI.
        pub async fn create() -> Option<Self> {
            let endpoint = super::require_env("DYNAMODB_ENDPOINT")?;
            Some(Self::create_at(&endpoint).await)
        }

        /// Fresh tables on the server at `endpoint`.
        pub async fn create_at(endpoint: &str) -> Self {
            let endpoint = endpoint.to_owned();
            let suffix = uuid::Uuid::new_v4().simple().to_string();
            let config = Config::from_lookup(|key| match key {
                "STORE" => Some("dynamodb".into()),
                "DYNAMODB_ENDPOINT" => Some(endpoint.clone()),
                "ACCOUNTS_TABLE" => Some(format!("accounts-{suffix}")),
                "PROFILES_TABLE" => Some(format!("profiles-{suffix}")),
                "SECURITY_TABLE" => Some(format!("security-{suffix}")),
                _ => None,
            })
            .expect("test configuration is valid");
            let client = crate::store::dynamodb::client(&config).await;
            let tables = Self { client, config };
            let names = tables.config.store.tables.clone();
            tables.make(&names.accounts, "pk").await;
            tables.make(&names.profiles, "user_id").await;
            tables.make(&names.security, "pk").await;
            tables
        }

        /// Stores on these tables, sharing this client.
        pub async fn stores(&self) -> Stores {
            Stores::from_config(&self.config)
                .await
                .expect("dynamodb stores build")
        }

        async fn make(&self, table: &str, key: &str) {
            self.client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("attribute definition"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("key schema"),
                )
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot create table {table}: {e:?}"));
            for _ in 0..100 {
                let described = self
                    .client
                    .describe_table()
                    .table_name(table)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("cannot describe table {table}: {e:?}"));
                if described.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("table {table} did not become active");
        }

        /// The accounts-table keys (`pk`) among `keys` that have an item.
        pub async fn account_keys_present(&self, keys: &[String]) -> Vec<String> {
            let mut present = Vec::new();
            for key in keys {
                let out = self
                    .client
                    .get_item()
                    .table_name(&self.config.store.tables.accounts)
                    .key(
                        "pk",
                        aws_sdk_dynamodb::types::AttributeValue::S(key.clone()),
                    )
                    .consistent_read(true)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("cannot read {key}: {e:?}"));
                if out.item().is_some() {
                    present.push(key.clone());
                }
            }
            present
        }

        /// Every item of the security table, as text (`pk` first), for tests that check
        /// what is and is not stored.
        pub async fn security_items(&self) -> Vec<String> {
            let out = self
                .client
                .scan()
                .table_name(&self.config.store.tables.security)
                .consistent_read(true)
                .send()
                .await
                .unwrap_or_else(|e| panic!("cannot scan the security table: {e:?}"));
            let mut items: Vec<String> = out
                .items()
                .iter()
                .map(|item| {
                    let mut fields: Vec<String> =
                        item.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
                    fields.sort_by_key(|f| !f.starts_with("pk="));
                    fields.join(" ")
                })
                .collect();
            items.sort();
            items
        }

        /// [`account_table_problems`] of these tables' accounts table.
        pub async fn account_problems(&self) -> Vec<String> {
            account_table_problems(&self.client, &self.config.store.tables.accounts).await
        }

        /// Checks the accounts table ([`account_table_problems`]), deletes the tables
        /// (failures to delete are reported, not fatal), then panics if the check found
        /// a problem: every suite on DynamoDB ends with this check.
        pub async fn delete(self) {
            let problems = self.account_problems().await;
            for table in [
                &self.config.store.tables.accounts,
                &self.config.store.tables.profiles,
                &self.config.store.tables.security,
            ] {
                if let Err(e) = self.client.delete_table().table_name(table).send().await {
                    eprintln!("could not delete test table {table}: {e:?}");
                }
            }
            assert!(
                problems.is_empty(),
                "the accounts table was inconsistent: {problems:#?}"
            );
        }
    }
}
