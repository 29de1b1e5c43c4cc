//! What the users tests share beyond `testkit`: an app over in-memory stores,
//! checking tokens in-process, and two users.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use stores::memory::{
    MemoryAccountStore, MemoryLoginAttemptStore, MemoryProfileStore, MemorySessionStore,
};
use testkit::{Reply, send, tokens};
use tokens::Tokens;
use users::{AppState, Authenticator};

pub const ALICE: &str = "550e8400-e29b-41d4-a716-446655440000";
pub const BOB: &str = "660e8400-e29b-41d4-a716-446655440001";

/// A users app checking tokens in-process, and its store for direct set-up.
pub struct TestApp {
    pub router: Router,
    pub store: Arc<MemoryProfileStore>,
    pub tokens: Arc<Tokens>,
    /// The accounts `sessions` checks a session's start against.
    pub accounts: Arc<MemoryAccountStore>,
    pub sessions: Arc<MemorySessionStore>,
}

/// Sessions and the accounts they belong to.
pub type Sessions = (Arc<MemoryAccountStore>, Arc<MemorySessionStore>);

/// Sessions over `profiles`, with accounts of their own.
pub fn sessions(profiles: &Arc<MemoryProfileStore>) -> Sessions {
    let tables = profiles.tables();
    let accounts = Arc::new(MemoryAccountStore::over(tables.clone()));
    let sessions = Arc::new(MemorySessionStore::over(
        tables,
        Arc::new(MemoryLoginAttemptStore::new()),
    ));
    (accounts, sessions)
}

pub fn app() -> TestApp {
    let store = Arc::new(MemoryProfileStore::new());
    let (accounts, sessions) = sessions(&store);
    let tokens = tokens();
    let router = users::router(AppState::new(
        store.clone(),
        Authenticator::local(tokens.clone(), sessions.clone()),
    ));
    TestApp {
        router,
        store,
        tokens,
        accounts,
        sessions,
    }
}

impl TestApp {
    /// A valid token for `user_id`, in a session of its own.
    pub fn token(&self, user_id: &str, username: &str) -> String {
        testkit::token(
            &self.tokens,
            self.accounts.as_ref(),
            self.sessions.as_ref(),
            user_id,
            username,
        )
    }

    /// A live session of `user_id` lasting `ttl_secs`, started as a login starts one;
    /// its id, for the `sid` claim of a token made by hand.
    pub fn session(&self, user_id: uuid::Uuid, username: &str, ttl_secs: i64) -> uuid::Uuid {
        testkit::start_session_now(
            self.accounts.as_ref(),
            self.sessions.as_ref(),
            user_id,
            username,
            ttl_secs,
        )
    }

    /// A correctly signed token that expired a minute ago.
    pub fn expired_token(&self, user_id: &str) -> String {
        testkit::expired_token(&self.tokens, user_id)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string())),
            None => builder.body(Body::empty()),
        };
        send(&self.router, request.unwrap()).await
    }

    /// Creates `user_id`'s profile as that user, asserting success.
    pub async fn create(&self, user_id: &str, username: &str) -> Value {
        let token = self.token(user_id, username);
        let reply = self
            .call(
                Method::POST,
                "/users",
                Some(&token),
                Some(profile_json(user_id, username)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body
    }
}

/// Every route that needs a bearer token, with a valid body where it takes one.
pub fn protected_routes() -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/users/{ALICE}");
    vec![
        (Method::GET, "/users".into(), None),
        (
            Method::POST,
            "/users".into(),
            Some(profile_json(ALICE, "alice")),
        ),
        (Method::GET, one.clone(), None),
        (Method::PUT, one.clone(), Some(json!({"bio": "x"}))),
        (Method::DELETE, one, None),
    ]
}

pub fn profile_json(user_id: &str, username: &str) -> Value {
    json!({
        "user_id": user_id,
        "username": username,
        "email": format!("{username}@example.com"),
        "full_name": format!("{username} Smith"),
        "bio": "Software developer passionate about Rust"
    })
}
