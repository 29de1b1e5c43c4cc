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

use mail::Mailbox;
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
    /// A client of `tables` whose every call the returned counter records.
    fn client_of(tables: &TempTables) -> (Client, Self) {
        let calls = Self::default();
        let config = tables.client.config().to_builder();
        let client = Client::from_conf(config.interceptor(calls.clone()).build());
        (client, calls)
    }

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

/// The calls of a registration: the address counted, the account and its claims, and
/// the verification link's token (issued, its user's latest for the purpose).
const REGISTER: &[&str] = &[
    "UpdateItem",
    "TransactWriteItems(3)",
    "TransactWriteItems(2)",
];
/// The calls of a registration whose username or email is taken: no token.
const REGISTER_TAKEN: &[&str] = &["UpdateItem", "TransactWriteItems(3)"];
/// The calls of a password check (a login's, or a password change's or an account
/// deletion's after the token check): an attempt reserved on both counters, username
/// and address, then the account read.
const PASSWORD_CHECK: &[&str] = &["UpdateItem", "UpdateItem", "GetItem"];
/// The calls of a refresh, first or retried within the reuse interval: the token, the
/// rotation, then the account (for what the new token says of it, `email_verified`).
const REFRESH: &[&str] = &["GetItem", "TransactWriteItems(4)", "GetItem"];
/// The calls of using up a mailed token: it and its account read, then one transaction
/// (the token deleted, its pointer checked, both account copies, and for a reset the
/// user's state).
const VERIFY_LINK: &[&str] = &["GetItem", "GetItem", "TransactWriteItems(4)"];
const RESET_LINK: &[&str] = &["GetItem", "GetItem", "TransactWriteItems(5)"];
/// The calls of a users read with a token: its check and the profile.
const USERS_READ: &[&str] = &["BatchGetItem", "GetItem"];
/// The calls of a users write with a token: its check and the profile with its guard.
const USERS_WRITE: &[&str] = &["BatchGetItem", "TransactWriteItems(3)"];

/// The calls of `steps`, one after the other.
fn calls(steps: &[&[&'static str]]) -> Vec<&'static str> {
    steps.concat()
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
    /// What auth mailed: the links' tokens.
    mailbox: Mailbox,
}

impl Functions {
    async fn on_dynamodb() -> Option<Self> {
        let tables = TempTables::create().await?;
        let (client, calls) = Counter::client_of(&tables);
        let config = on_tables(&tables, &[("JWT_SECRET", SECRET)]);
        let tokens = tokens();
        let stores = Stores::dynamodb(client, &config);
        let mailbox = Mailbox::new(&config.auth.mail.from);
        let auth = auth::router(
            auth::AppState::new(&stores, tokens.clone(), &config.auth)
                .with_mailer(Arc::new(mailbox.clone())),
        );
        let strict = on_tables(
            &tables,
            &[("JWT_SECRET", SECRET), ("REFRESH_REUSE_INTERVAL_SECS", "0")],
        );
        let auth_without_reuse_interval =
            auth::router(auth::AppState::new(&stores, tokens.clone(), &strict.auth));
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
            mailbox,
        })
    }

    /// Sends `event` to auth, checks the status, and returns the body; the calls it
    /// made must be `expected` (operation names, transactions with their action count).
    async fn auth(
        &mut self,
        endpoint: &str,
        event: Value,
        status: u16,
        expected: &[&str],
    ) -> Value {
        let auth = self.auth.clone();
        self.call_on(auth, endpoint, false, event, status, expected)
            .await
    }

    /// Sends the users fixture `name`, with `token` as its bearer if any, to users;
    /// as [`auth`](Self::auth) does.
    async fn users(
        &mut self,
        endpoint: &str,
        name: &str,
        token: Option<&str>,
        status: u16,
        expected: &[&str],
    ) {
        let event = match token {
            Some(token) => with_header(event(name), "authorization", &format!("Bearer {token}")),
            None => event(name),
        };
        let users = self.users.clone();
        self.call_on(users, endpoint, true, event, status, expected)
            .await;
    }

    /// [`auth`](Self::auth) on `router`, auth's or users' (`users`).
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

    /// A measured login with `credentials`: its answer.
    async fn measured_login(&mut self, credentials: &Value) -> Value {
        let login = body("auth-login", credentials.clone());
        let calls = calls(&[PASSWORD_CHECK, &["TransactWriteItems(5)"]]);
        self.auth("POST /login", login, 200, &calls).await
    }

    /// A login like the measured one, left out of the report: its access token.
    async fn login(&mut self, credentials: &Value) -> String {
        let answer = self.measured_login(credentials).await;
        self.measured.pop();
        answer["token"].as_str().unwrap().to_owned()
    }

    /// The token of the last link to the app's `page` mailed to `to`.
    fn mailed_token(&self, to: &str, page: &str) -> String {
        testkit::mail::link_token(&self.mailbox, to, page)
    }

    /// A POST of `body` to auth's `path` (with `token` as its bearer), measured as
    /// [`auth`](Self::auth).
    async fn auth_post(
        &mut self,
        endpoint: &str,
        path: &str,
        (body, token): (Value, Option<&str>),
        status: u16,
        expected: &[&str],
    ) -> Value {
        let mut event = with_path(with_body(event("auth-login"), &body), path);
        if let Some(token) = token {
            event = with_header(event, "authorization", &format!("Bearer {token}"));
        }
        self.auth(endpoint, event, status, expected).await
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

    for (endpoint, fixture, status, expected) in [
        ("GET / (auth health)", "auth-health", 200, &[][..]),
        ("POST /register", "auth-register", 200, REGISTER),
        (
            "POST /register (username taken: 409)",
            "auth-register",
            409,
            REGISTER_TAKEN,
        ),
    ] {
        f.auth(endpoint, event(fixture), status, expected).await;
    }
    let wrong_login = body("auth-login", wrong);
    let refused = "POST /login (wrong password: 401)";
    f.auth(refused, wrong_login, 401, PASSWORD_CHECK).await;
    let login = f.measured_login(&credentials).await;
    let token = login["token"].as_str().unwrap().to_owned();
    let refresh_token = login["refresh_token"].as_str().unwrap().to_owned();

    let validate = body("auth-validate", json!({"token": token}));
    f.auth("POST /validate", validate, 200, &["BatchGetItem"])
        .await;
    let refresh = || body("auth-refresh", json!({"refresh_token": refresh_token}));
    let refreshed = f.auth("POST /refresh", refresh(), 200, REFRESH).await;
    let retried = "POST /refresh (retried within the reuse interval)";
    f.auth(retried, refresh(), 200, REFRESH).await;
    let bearer = |token: &str| format!("Bearer {token}");
    let logout = with_header(
        body(
            "auth-logout",
            json!({"refresh_token": refreshed["refresh_token"]}),
        ),
        "authorization",
        &bearer(refreshed["token"].as_str().unwrap()),
    );
    let with_refresh = "POST /logout (with a refresh token)";
    let ended = ["BatchGetItem", "GetItem", "UpdateItem"];
    f.auth(with_refresh, logout, 200, &ended).await;
    let strict = f.auth_without_reuse_interval.clone();
    let reused = "POST /refresh (retired token: reuse ends the session, 401)";
    let revoked = ["GetItem", "UpdateItem"];
    f.call_on(strict, reused, false, refresh(), 401, &revoked)
        .await;
    let second = f.login(&credentials).await;
    let logout = with_header(
        body("auth-logout", json!({})),
        "authorization",
        &bearer(&second),
    );
    let bearer_only = ["BatchGetItem", "UpdateItem"];
    f.auth("POST /logout (bearer only)", logout, 200, &bearer_only)
        .await;

    // The users fixtures speak for ALICE, whose username "alice" the registration
    // above took with another id: her session belongs to an account of another name,
    // and her token carries the fixtures' username.
    let fixture_user = ALICE.parse().unwrap();
    let seeded = testkit::signed_in(&f.stores, &f.tokens, fixture_user, "fixture_alice").await;
    let sid = f.tokens.verify(&seeded).unwrap().session_id();
    let alice = f.tokens.issue(fixture_user, "alice", sid).unwrap().token;
    f.users("GET / (users health)", "users-health", None, 200, &[])
        .await;
    for (endpoint, fixture, expected) in [
        ("POST /users", "users-create", USERS_WRITE),
        ("GET /users/{id}", "users-get", USERS_READ),
        ("PUT /users/{id}", "users-update", USERS_WRITE),
        (
            "GET /users?limit=2",
            "users-list",
            &["BatchGetItem", "Scan"],
        ),
        (
            "DELETE /users/{id}",
            "users-delete",
            &["BatchGetItem", "DeleteItem"],
        ),
    ] {
        f.users(endpoint, fixture, Some(&alice), 200, expected)
            .await;
    }
    let revoked = "GET /users/{id} (revoked token: 401)";
    f.users(revoked, "users-get", Some(&token), 401, USERS_READ)
        .await;

    // A signed-in user's own account.
    let logins = [f.login(&credentials).await, f.login(&credentials).await];
    let (mine, other) = (bearer(&logins[0]), &logins[1]);
    let own = |name: &str| with_header(event(name), "authorization", &mine);
    let sessions = ["BatchGetItem", "GetItem", "Query"];
    f.auth("GET /sessions", own("auth-sessions"), 200, &sessions)
        .await;
    let end = |sid: &str| {
        let mut e = with_path(own("auth-end-session"), &format!("/api/sessions/{sid}"));
        e["pathParameters"]["id"] = json!(sid);
        e
    };
    let other_sid = f.tokens.verify(other).unwrap().sid;
    let ended = ["BatchGetItem", "BatchGetItem", "UpdateItem"];
    f.auth("DELETE /sessions/{id}", end(&other_sid), 200, &ended)
        .await;
    let not_found = "DELETE /sessions/{id} (not the caller's: 404)";
    let unknown = end(&uuid::Uuid::new_v4().to_string());
    f.auth(not_found, unknown, 404, &["BatchGetItem", "BatchGetItem"])
        .await;
    let change = |current: &str| {
        with_body(
            own("auth-password"),
            &json!({"current_password": current, "new_password": "a-brand-new-passphrase-42"}),
        )
    };
    let _third = f.login(&credentials).await;
    let refused = calls(&[&["BatchGetItem"], PASSWORD_CHECK]);
    let wrong_current = "POST /password (wrong current password: 401)";
    f.auth(wrong_current, change("not-the-password"), 401, &refused)
        .await;
    let right = change("securePassword123");
    let then = [
        "DeleteItem",
        "UpdateItem",
        "GetItem",
        "Query",
        "TransactWriteItems(3)",
    ];
    let change_calls = calls(&[&["BatchGetItem"], PASSWORD_CHECK, &then]);
    let changed = f.auth("POST /password", right, 200, &change_calls).await;
    assert_eq!(changed["sessions_ended"], 1, "the third login's session");
    let delete = with_body(
        own("auth-delete-account"),
        &json!({"password": "a-brand-new-passphrase-42"}),
    );
    let then = ["DeleteItem", "UpdateItem", "TransactWriteItems(5)"];
    let deletion = calls(&[&["BatchGetItem"], PASSWORD_CHECK, &then]);
    f.auth("DELETE /account", delete.clone(), 200, &deletion)
        .await;
    let again = "DELETE /account (asked again: 200)";
    f.auth(again, delete, 200, &["BatchGetItem"]).await;
    let gone = "GET /users/{id} (deleted user's token: 401)";
    f.users(gone, "users-get", Some(&logins[0]), 401, USERS_READ)
        .await;

    mail_flows(&mut f).await;
    f.write_report();
    tokio::time::timeout(Duration::from_secs(30), f.tables.delete())
        .await
        .expect("tables deleted");
}

/// The mailed-link routes (issue 33) of a new account, carol's.
async fn mail_flows(f: &mut Functions) {
    let carol = json!({"username": "carol", "email": "carol@example.com",
                       "password": "securePassword123"});
    let register = with_body(event("auth-register"), &carol);
    f.auth("POST /register (carol)", register, 200, REGISTER)
        .await;
    let credentials = json!({"username": "carol", "password": "securePassword123"});
    let token = f.login(&credentials).await;

    let resend = (json!({}), Some(token.as_str()));
    let then = [
        "BatchGetItem",
        "GetItem",
        "UpdateItem",
        "TransactWriteItems(2)",
    ];
    f.auth_post(
        "POST /email/verify/resend",
        "/api/email/verify/resend",
        resend,
        202,
        &then,
    )
    .await;
    let link = f.mailed_token("carol@example.com", "verify-email");
    let verify = (json!({"token": link}), None);
    let route = ("POST /email/verify", "/api/email/verify");
    f.auth_post(route.0, route.1, verify, 200, VERIFY_LINK)
        .await;

    let known = (json!({"email": "carol@example.com"}), None);
    let counted = ["UpdateItem", "UpdateItem"];
    let sent = calls(&[&counted, &["GetItem", "GetItem", "TransactWriteItems(2)"]]);
    f.auth_post(
        "POST /password/forgot",
        "/api/password/forgot",
        known,
        202,
        &sent,
    )
    .await;
    let unknown = (json!({"email": "nobody@example.com"}), None);
    let none = calls(&[&counted, &["GetItem"]]);
    let what = "POST /password/forgot (no such account: the same answer)";
    f.auth_post(what, "/api/password/forgot", unknown, 202, &none)
        .await;
    let link = f.mailed_token("carol@example.com", "reset-password");
    let reset = json!({"token": link, "new_password": "a-brand-new-passphrase-42"});
    f.auth_post(
        "POST /password/reset",
        "/api/password/reset",
        (reset, None),
        200,
        RESET_LINK,
    )
    .await;

    let credentials = json!({"username": "carol", "password": "a-brand-new-passphrase-42"});
    let token = f.login(&credentials).await;
    let change = json!({"new_email": "carol.new@example.com",
                        "password": "a-brand-new-passphrase-42"});
    let then = [
        "DeleteItem",
        "UpdateItem",
        "GetItem",
        "UpdateItem",
        "TransactWriteItems(2)",
    ];
    let asked = calls(&[&["BatchGetItem"], PASSWORD_CHECK, &then]);
    f.auth_post(
        "POST /email",
        "/api/email",
        (change, Some(&token)),
        202,
        &asked,
    )
    .await;
    let link = f.mailed_token("carol.new@example.com", "confirm-email");
    // The token, its account and whether there is a profile, then the transaction.
    let confirmed = ["GetItem", "GetItem", "GetItem", "TransactWriteItems(6)"];
    let confirm = (json!({"token": link}), None);
    f.auth_post(
        "POST /email/confirm",
        "/api/email/confirm",
        confirm,
        200,
        &confirmed,
    )
    .await;
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
    let (client, calls) = Counter::client_of(&tables);
    let config = on_tables(&tables, &[]);
    let stores = Stores::dynamodb(client, &config);
    let material = Secret::named("JWT_SIGNING_KEY", "k".repeat(40)).unwrap();
    let signer = Tokens::ed25519(
        Ed25519Key::from_material(&material),
        Some(stores.keys.clone()),
        config.auth.tokens.access_ttl,
    );
    let good = signer
        .issue(ALICE.parse().unwrap(), "alice", uuid::Uuid::new_v4())
        .unwrap()
        .token;
    let verifier = config.auth.tokens.verifier(stores.keys.clone()).unwrap();
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
