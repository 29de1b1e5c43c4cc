//! What the users tests share beyond `testkit`: an app over in-memory stores,
//! checking tokens in-process or asking an auth over HTTP, and two users.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use settings::HttpClientConfig;
use stores::memory::{
    MemoryAccountStore, MemoryLoginAttemptStore, MemoryProfileStore, MemorySessionStore,
};
use stores::{SessionStore, Stores};
use testkit::{Reply, config, error, send, tokens};
use tokens::{Claims, Tokens};
use users::{AppState, Authenticator};
use uuid::Uuid;

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

/// A fresh [`app`] and a token of alice's, who has no profile yet.
pub fn app_and_alice() -> (TestApp, String) {
    let app = app();
    let token = app.token(ALICE, "alice");
    (app, token)
}

/// A fresh [`app`] in which alice has created her profile, and another token of hers.
pub async fn app_with_alices_profile() -> (TestApp, String) {
    let app = app();
    app.create(ALICE, "alice").await;
    let token = app.token(ALICE, "alice");
    (app, token)
}

/// Serves `app` on a free loopback port for the rest of the test; its base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// A real auth function over `stores`, sharing the tests' secret, served on a free
/// loopback port; its base URL.
pub async fn serve_auth(stores: &Stores) -> String {
    serve(auth::router(auth::AppState::new(
        stores,
        tokens(),
        &config(&[]),
    )))
    .await
}

/// An authenticator asking the auth at `auth_url`, connecting within half a second
/// and waiting `request_timeout` for an answer.
pub fn remote(auth_url: &str, request_timeout: Duration) -> Authenticator {
    Authenticator::remote(
        &auth_url.parse().unwrap(),
        &HttpClientConfig {
            connect_timeout: Duration::from_millis(500),
            request_timeout,
        },
    )
    .unwrap()
}

impl TestApp {
    /// A users app over a fresh store checking tokens with `auth`, with sessions of
    /// its own for the tokens it makes.
    pub fn with_auth(auth: Authenticator) -> Self {
        let store = Arc::new(MemoryProfileStore::new());
        let sessions = sessions(&store);
        Self::with_auth_and_sessions(auth, sessions, store)
    }

    /// A users app over `store` checking tokens with `auth`, making its tokens'
    /// sessions in `sessions`.
    pub fn with_auth_and_sessions(
        auth: Authenticator,
        (accounts, sessions): Sessions,
        store: Arc<MemoryProfileStore>,
    ) -> Self {
        TestApp {
            router: users::router(AppState::new(store.clone(), auth)),
            accounts,
            sessions,
            store,
            tokens: tokens(),
        }
    }

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

    /// A token for `user_id`, in a live session of its own, issued now and expiring at
    /// `exp` (seconds since the epoch).
    pub fn token_expiring_at(&self, user_id: &str, username: &str, exp: i64) -> String {
        let sid = self.session(Uuid::parse_str(user_id).unwrap(), username, 3600);
        let now = chrono::Utc::now().timestamp();
        self.tokens
            .sign(&Claims {
                sub: user_id.into(),
                username: username.into(),
                iat: now,
                exp,
                jti: Uuid::new_v4().to_string(),
                sid: sid.to_string(),
                iss: tokens::DEFAULT_ISSUER.into(),
                aud: tokens::DEFAULT_AUDIENCE.into(),
                email_verified: false,
            })
            .unwrap()
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

    /// `GET path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` of `body` with `token`.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// `PUT path` of `body` with `token`.
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    /// `DELETE path` with `token`.
    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Asserts that every one of [`protected_routes`] answers `expected` (status, body)
    /// to a request with `token`, or with no token.
    pub async fn assert_every_protected_route(
        &self,
        token: Option<&str>,
        expected: (StatusCode, Value),
    ) {
        for (method, path, body) in protected_routes() {
            let reply = self.call(method.clone(), &path, token, body).await;
            assert_eq!(reply, expected, "{method} {path}");
        }
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

/// Ends the session of `token` (signed with the tests' secret) in `sessions`,
/// asserting it was live.
pub async fn end_session_of(sessions: &dyn SessionStore, token: &str) {
    let claims = tokens().verify(token).unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!(
        sessions
            .end_session(Some(claims.user_id()), claims.session_id(), now)
            .await
            .unwrap()
    );
}

/// The answer to a token that is not (or no longer) good.
pub fn invalid_token() -> (StatusCode, Value) {
    (
        StatusCode::UNAUTHORIZED,
        error(401, "Invalid or expired token"),
    )
}

/// Reading, updating and deleting one profile, with a valid body where it takes one.
pub fn one_profile_routes() -> [(Method, Option<Value>); 3] {
    [
        (Method::GET, None),
        (Method::PUT, Some(json!({"bio": "x"}))),
        (Method::DELETE, None),
    ]
}

/// Every route that needs a bearer token, with a valid body where it takes one.
pub fn protected_routes() -> Vec<(Method, String, Option<Value>)> {
    let one = format!("/users/{ALICE}");
    let mut routes = vec![
        (Method::GET, "/users".into(), None),
        (
            Method::POST,
            "/users".into(),
            Some(profile_json(ALICE, "alice")),
        ),
    ];
    routes.extend(one_profile_routes().map(|(method, body)| (method, one.clone(), body)));
    routes
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
