//! The DynamoDB calls of each endpoint, counted by an SDK interceptor against moto and
//! asserted (`BENCH_DYNAMODB_CALLS=<file>` also writes them for the cost table).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::box_error::BoxError;
use serde_json::{Value, json};

use stores::Stores;
use testkit::dynamodb::TempTables;
use testkit::{SECRET, event, invoke, tokens, with_body, with_header, with_path};
use tokens::Tokens;

use crate::support::on_tables;

/// The user of the users fixtures (`fixtures/events/users-*.json`).
const ALICE: &str = "550e8400-e29b-41d4-a716-446655440000";

/// One DynamoDB operation as the SDK executed it.
#[derive(Debug, Clone, Default)]
struct Call {
    operation: String,
    /// Actions in a `TransactWriteItems`.
    transact_items: usize,
    /// Strongly consistent (`GetItem`, `Scan`, `BatchGetItem`).
    consistent: bool,
    /// Keys asked for by a `BatchGetItem`.
    batch_keys: usize,
    /// Bytes of the items a read returned, by DynamoDB's item-size rules.
    read_bytes: usize,
}

impl Call {
    /// On-demand read request units: 1 per 4 KB read strongly consistent (0.5
    /// eventually consistent), at least one unit even when nothing is found; a
    /// `BatchGetItem` pays so for each key (every item here is under 4 KB).
    fn rru(&self) -> f64 {
        let per_unit = if self.consistent { 1.0 } else { 0.5 };
        match self.operation.as_str() {
            "GetItem" | "Scan" | "Query" => self.read_bytes.div_ceil(4096).max(1) as f64 * per_unit,
            "BatchGetItem" => self.batch_keys as f64 * per_unit,
            _ => 0.0,
        }
    }

    /// On-demand write request units: 1 per write of an item up to 1 KB, 2 per action
    /// of a transaction (condition checks included). Every item here is under 1 KB.
    fn wru(&self) -> f64 {
        match self.operation.as_str() {
            "PutItem" | "UpdateItem" | "DeleteItem" => 1.0,
            "TransactWriteItems" => 2.0 * self.transact_items as f64,
            _ => 0.0,
        }
    }

    fn label(&self) -> String {
        if self.operation == "TransactWriteItems" {
            format!("TransactWriteItems({})", self.transact_items)
        } else {
            self.operation.clone()
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Counter(Arc<Mutex<Vec<Call>>>);

impl Counter {
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn item_bytes(item: &std::collections::HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len().div_ceil(2) + 1,
                    AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
                    other => format!("{other:?}").len(),
                }
        })
        .sum()
}

impl Intercept for Counter {
    fn name(&self) -> &'static str {
        "CountDynamoDbCalls"
    }

    fn read_before_execution(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let batch = input.downcast_ref::<BatchGetItemInput>();
        let call = Call {
            batch_keys: batch
                .and_then(|b| b.request_items())
                .map_or(0, |tables| tables.values().map(|k| k.keys().len()).sum()),
            operation: String::new(),
            transact_items: input
                .downcast_ref::<TransactWriteItemsInput>()
                .map_or(0, |i| i.transact_items().len()),
            consistent: input
                .downcast_ref::<GetItemInput>()
                .and_then(|i| i.consistent_read())
                .or_else(|| {
                    input
                        .downcast_ref::<ScanInput>()
                        .and_then(|i| i.consistent_read())
                })
                .or_else(|| {
                    batch
                        .and_then(|b| b.request_items())
                        .map(|tables| tables.values().all(|k| k.consistent_read() == Some(true)))
                })
                .unwrap_or(false),
            read_bytes: 0,
        };
        self.0.lock().unwrap().push(call);
        Ok(())
    }

    /// The operation, from the request's `X-Amz-Target` (`DynamoDB_20120810.GetItem`).
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown");
        if let Some(last) = self.0.lock().unwrap().last_mut()
            && last.operation.is_empty()
        {
            last.operation = target.to_owned();
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(output)) = context.output_or_error() else {
            return Ok(());
        };
        let bytes = if let Some(out) = output.downcast_ref::<GetItemOutput>() {
            out.item().map_or(0, item_bytes)
        } else if let Some(out) = output.downcast_ref::<ScanOutput>() {
            out.items().iter().map(item_bytes).sum()
        } else if let Some(out) = output.downcast_ref::<QueryOutput>() {
            out.items().iter().map(item_bytes).sum()
        } else if let Some(out) = output.downcast_ref::<BatchGetItemOutput>() {
            out.responses()
                .map_or(0, |r| r.values().flatten().map(item_bytes).sum())
        } else {
            return Ok(());
        };
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.read_bytes = bytes;
        }
        Ok(())
    }
}

struct Functions {
    auth: axum::Router,
    /// Auth with `REFRESH_REUSE_INTERVAL_SECS=0`, on the same stores: a retired refresh
    /// token presented again at once is reuse.
    auth_without_reuse_interval: axum::Router,
    users: axum::Router,
    calls: Counter,
    tokens: Arc<Tokens>,
    stores: Stores,
    tables: TempTables,
    measured: Vec<Value>,
}

impl Functions {
    async fn on_dynamodb() -> Option<Self> {
        let tables = TempTables::create().await?;
        let calls = Counter::default();
        let client = Client::from_conf(
            tables
                .client
                .config()
                .to_builder()
                .interceptor(calls.clone())
                .build(),
        );
        let config = on_tables(&tables, &[("JWT_SECRET", SECRET)]);
        let tokens = tokens();
        let stores = Stores::dynamodb(client, &config);
        let auth = auth::router(auth::AppState::new(&stores, tokens.clone(), &config.auth()));
        let strict = on_tables(
            &tables,
            &[("JWT_SECRET", SECRET), ("REFRESH_REUSE_INTERVAL_SECS", "0")],
        );
        let auth_without_reuse_interval =
            auth::router(auth::AppState::new(&stores, tokens.clone(), &strict.auth()));
        let users = users::router(users::AppState::new(
            stores.profiles.clone(),
            users::Authenticator::local(tokens.clone(), stores.checks.clone()),
        ));
        Some(Self {
            auth,
            auth_without_reuse_interval,
            users,
            calls,
            tokens,
            stores,
            tables,
            measured: Vec::new(),
        })
    }

    /// Sends `event` to `router`, checks the status, and returns the body and the
    /// calls it made, which must be `expected` (operation names, transactions with
    /// their action count).
    async fn call(
        &mut self,
        endpoint: &str,
        users: bool,
        event: Value,
        status: u16,
        expected: &[&str],
    ) -> Value {
        let router = if users { &self.users } else { &self.auth };
        self.call_on(router.clone(), endpoint, users, event, status, expected)
            .await
    }

    /// [`call`](Self::call) on `router`.
    async fn call_on(
        &mut self,
        router: axum::Router,
        endpoint: &str,
        users: bool,
        event: Value,
        status: u16,
        expected: &[&str],
    ) -> Value {
        self.calls.take();
        let reply = invoke(router, event).await;
        assert_eq!(reply.status, status, "{endpoint}: {:?}", reply.body);
        let calls = self.calls.take();
        let mut labels: Vec<String> = calls.iter().map(Call::label).collect();
        // A users read sends its two lookups at once: they may arrive in either order.
        if users && labels.len() == 2 && labels[0] == "GetItem" {
            labels.reverse();
        }
        assert_eq!(labels, expected, "DynamoDB calls of {endpoint}");
        let rru = calls.iter().map(Call::rru).fold(0.0, |a, b| a + b);
        let wru = calls.iter().map(Call::wru).fold(0.0, |a, b| a + b);
        self.measured.push(json!({
            "endpoint": endpoint,
            "function": if users { "users" } else { "auth" },
            "calls": labels,
            "rru": rru,
            "wru": wru,
        }));
        reply.body
    }

    /// A login like the measured one, left out of the report: its access token.
    async fn login(&mut self, credentials: &Value) -> String {
        let answer = self
            .call(
                "POST /login",
                false,
                body("auth-login", credentials.clone()),
                200,
                &[
                    "UpdateItem",
                    "UpdateItem",
                    "GetItem",
                    "TransactWriteItems(5)",
                ],
            )
            .await;
        self.measured.pop();
        answer["token"].as_str().unwrap().to_owned()
    }

    fn write_report(&self) {
        if let Some(path) = std::env::var_os("BENCH_DYNAMODB_CALLS") {
            std::fs::write(&path, serde_json::to_string_pretty(&self.measured).unwrap())
                .unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
        }
    }
}

fn body(name: &str, body: Value) -> Value {
    with_body(event(name), &body)
}

#[tokio::test]
async fn every_endpoint_makes_the_dynamodb_calls_of_the_cost_model() {
    let Some(mut f) = Functions::on_dynamodb().await else {
        return;
    };
    let credentials = json!({"username": "alice", "password": "securePassword123"});
    let wrong = json!({"username": "alice", "password": "not-the-password"});

    f.call("GET / (auth health)", false, event("auth-health"), 200, &[])
        .await;
    f.call(
        "POST /register",
        false,
        event("auth-register"),
        200,
        &["UpdateItem", "TransactWriteItems(3)"],
    )
    .await;
    f.call(
        "POST /register (username taken: 409)",
        false,
        event("auth-register"),
        409,
        &["UpdateItem", "TransactWriteItems(3)"],
    )
    .await;
    f.call(
        "POST /login (wrong password: 401)",
        false,
        body("auth-login", wrong),
        401,
        &["UpdateItem", "UpdateItem", "GetItem"],
    )
    .await;
    let login = f
        .call(
            "POST /login",
            false,
            body("auth-login", credentials.clone()),
            200,
            &[
                "UpdateItem",
                "UpdateItem",
                "GetItem",
                "TransactWriteItems(5)",
            ],
        )
        .await;
    let token = login["token"].as_str().unwrap().to_owned();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();

    f.call(
        "POST /validate",
        false,
        body("auth-validate", json!({"token": token})),
        200,
        &["BatchGetItem"],
    )
    .await;
    let refreshed = f
        .call(
            "POST /refresh",
            false,
            body("auth-refresh", json!({"refresh_token": refresh_token})),
            200,
            &["GetItem", "TransactWriteItems(4)"],
        )
        .await;
    f.call(
        "POST /refresh (retried within the reuse interval)",
        false,
        body("auth-refresh", json!({"refresh_token": refresh_token})),
        200,
        &["GetItem", "TransactWriteItems(4)"],
    )
    .await;
    let bearer = |token: &str| format!("Bearer {token}");
    f.call(
        "POST /logout (with a refresh token)",
        false,
        with_header(
            body(
                "auth-logout",
                json!({"refresh_token": refreshed["refresh_token"]}),
            ),
            "authorization",
            &bearer(refreshed["token"].as_str().unwrap()),
        ),
        200,
        &["BatchGetItem", "GetItem", "UpdateItem"],
    )
    .await;
    let strict = f.auth_without_reuse_interval.clone();
    f.call_on(
        strict,
        "POST /refresh (retired token: reuse ends the session, 401)",
        false,
        body("auth-refresh", json!({"refresh_token": refresh_token})),
        401,
        &["GetItem", "UpdateItem"],
    )
    .await;
    let second = f.login(&credentials).await;
    f.call(
        "POST /logout (bearer only)",
        false,
        with_header(
            body("auth-logout", json!({})),
            "authorization",
            &bearer(&second),
        ),
        200,
        &["BatchGetItem", "UpdateItem"],
    )
    .await;

    // The users fixtures speak for ALICE, whose username "alice" the registration
    // above took with another id: her session belongs to an account of another name,
    // and her token carries the fixtures' username.
    let fixture_user = ALICE.parse().unwrap();
    let seeded = testkit::signed_in(&f.stores, &f.tokens, fixture_user, "fixture_alice").await;
    let sid = f.tokens.verify(&seeded).unwrap().session_id();
    let alice = f.tokens.issue(fixture_user, "alice", sid).unwrap().token;
    let authed = |name: &str| with_header(event(name), "authorization", &bearer(&alice));
    f.call(
        "GET / (users health)",
        true,
        event("users-health"),
        200,
        &[],
    )
    .await;
    f.call(
        "POST /users",
        true,
        authed("users-create"),
        200,
        &["BatchGetItem", "TransactWriteItems(3)"],
    )
    .await;
    f.call(
        "GET /users/{id}",
        true,
        authed("users-get"),
        200,
        &["BatchGetItem", "GetItem"],
    )
    .await;
    f.call(
        "PUT /users/{id}",
        true,
        authed("users-update"),
        200,
        &["BatchGetItem", "TransactWriteItems(3)"],
    )
    .await;
    f.call(
        "GET /users?limit=2",
        true,
        authed("users-list"),
        200,
        &["BatchGetItem", "Scan"],
    )
    .await;
    f.call(
        "DELETE /users/{id}",
        true,
        authed("users-delete"),
        200,
        &["BatchGetItem", "DeleteItem"],
    )
    .await;
    f.call(
        "GET /users/{id} (revoked token: 401)",
        true,
        with_header(event("users-get"), "authorization", &bearer(&token)),
        401,
        &["BatchGetItem", "GetItem"],
    )
    .await;

    // A signed-in user's own account.
    let logins = [f.login(&credentials).await, f.login(&credentials).await];
    let (mine, other) = (bearer(&logins[0]), &logins[1]);
    let own = |name: &str| with_header(event(name), "authorization", &mine);
    f.call(
        "GET /sessions",
        false,
        own("auth-sessions"),
        200,
        &["BatchGetItem", "GetItem", "Query"],
    )
    .await;
    let end = |sid: &str| {
        let mut e = with_path(own("auth-end-session"), &format!("/api/sessions/{sid}"));
        e["pathParameters"]["id"] = json!(sid);
        e
    };
    let other_sid = f.tokens.verify(other).unwrap().sid;
    f.call(
        "DELETE /sessions/{id}",
        false,
        end(&other_sid),
        200,
        &["BatchGetItem", "BatchGetItem", "UpdateItem"],
    )
    .await;
    f.call(
        "DELETE /sessions/{id} (not the caller's: 404)",
        false,
        end(&uuid::Uuid::new_v4().to_string()),
        404,
        &["BatchGetItem", "BatchGetItem"],
    )
    .await;
    let change = |current: &str| {
        with_body(
            own("auth-password"),
            &json!({"current_password": current, "new_password": "a-brand-new-passphrase-42"}),
        )
    };
    let _third = f.login(&credentials).await;
    f.call(
        "POST /password (wrong current password: 401)",
        false,
        change("not-the-password"),
        401,
        &["BatchGetItem", "UpdateItem", "UpdateItem", "GetItem"],
    )
    .await;
    let changed = f
        .call(
            "POST /password",
            false,
            change("securePassword123"),
            200,
            &[
                "BatchGetItem",
                "UpdateItem",
                "UpdateItem",
                "GetItem",
                "DeleteItem",
                "UpdateItem",
                "GetItem",
                "Query",
                "TransactWriteItems(3)",
            ],
        )
        .await;
    assert_eq!(changed["sessions_ended"], 1, "the third login's session");
    let delete = with_body(
        own("auth-delete-account"),
        &json!({"password": "a-brand-new-passphrase-42"}),
    );
    f.call(
        "DELETE /account",
        false,
        delete.clone(),
        200,
        &[
            "BatchGetItem",
            "UpdateItem",
            "UpdateItem",
            "GetItem",
            "DeleteItem",
            "UpdateItem",
            "TransactWriteItems(5)",
        ],
    )
    .await;
    f.call(
        "DELETE /account (asked again: 200)",
        false,
        delete,
        200,
        &["BatchGetItem"],
    )
    .await;
    f.call(
        "GET /users/{id} (deleted user's token: 401)",
        true,
        with_header(event("users-get"), "authorization", &mine),
        401,
        &["BatchGetItem", "GetItem"],
    )
    .await;

    f.write_report();
    tokio::time::timeout(Duration::from_secs(30), f.tables.delete())
        .await
        .expect("tables deleted");
}

/// A flood of tokens under random well-formed key ids (EdDSA, users holding no key)
/// costs a few reads of the key registry, never one read per request.
#[tokio::test]
async fn tokens_under_made_up_key_ids_do_not_cost_a_dynamodb_read_each() {
    use settings::Secret;
    use testkit::under_made_up_key_id;
    use tokens::{Ed25519Key, REGISTRY_READ_BURST};

    let Some(tables) = TempTables::create().await else {
        return;
    };
    let calls = Counter::default();
    let client = Client::from_conf(
        tables
            .client
            .config()
            .to_builder()
            .interceptor(calls.clone())
            .build(),
    );
    let config = on_tables(&tables, &[]);
    let stores = Stores::dynamodb(client, &config);
    let material = Secret::named("JWT_SIGNING_KEY", "k".repeat(40)).unwrap();
    let signer = Tokens::ed25519(
        Ed25519Key::from_material(&material),
        Some(stores.keys.clone()),
        config.tokens.access_ttl,
    );
    let good = signer
        .issue(ALICE.parse().unwrap(), "alice", uuid::Uuid::new_v4())
        .unwrap()
        .token;
    let verifier = config.tokens.verifier(stores.keys.clone()).unwrap();
    let users = users::router(users::AppState::new(
        stores.profiles.clone(),
        users::Authenticator::local(Arc::new(verifier), stores.checks.clone()),
    ));

    calls.take();
    for _ in 0..50 {
        let forged = format!("Bearer {}", under_made_up_key_id(&good));
        let reply = invoke(
            users.clone(),
            with_header(event("users-list"), "authorization", &forged),
        )
        .await;
        assert_eq!(reply.status, 401, "{:?}", reply.body);
    }
    let made = calls.take();
    assert!(
        made.len() <= REGISTRY_READ_BURST as usize,
        "{} DynamoDB calls for 50 made-up key ids: {made:?}",
        made.len()
    );
    assert!(
        made.iter().all(|c| c.operation == "GetItem"),
        "only reads of the key registry: {made:?}"
    );
    tokio::time::timeout(Duration::from_secs(30), tables.delete())
        .await
        .expect("tables deleted");
}
