//! Refresh, logout and login limits over real HTTP through the local stack's gateway,
//! with the in-memory stores and with DynamoDB tables (`DYNAMODB_ENDPOINT`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use testkit::error;
use testkit::http::PASSWORD;

use crate::support::{Running, on_both_stores};

/// The stack of a test, with the calls this file makes.
struct Api(Running);

impl From<Running> for Api {
    fn from(running: Running) -> Self {
        Self(running)
    }
}

impl Api {
    /// The stack on the in-memory stores, configured with `extra`.
    async fn memory(extra: &[(&str, &str)]) -> Self {
        Running::memory(extra).await.into()
    }

    async fn stop(self) {
        self.0.stop().await;
    }

    /// `POST url` with `headers` and `body` as JSON if any: the answer as it came.
    async fn post(
        &self,
        url: String,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.0.http.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// `POST /api{path}` through the gateway: the status and JSON body.
    async fn auth(
        &self,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let url = format!("{}/api{path}", self.0.stack.gateway_url());
        let response = self.post(url, body, headers).await;
        (response.status(), response.json().await.unwrap())
    }

    /// Logs `name` in with [`PASSWORD`].
    async fn login(&self, name: &str) -> (StatusCode, Value) {
        let creds = json!({"username": name, "password": PASSWORD});
        self.auth("/login", Some(creds), &[]).await
    }

    /// `POST /api/refresh` of `refresh_token`.
    async fn refresh(&self, refresh_token: &Value) -> (StatusCode, Value) {
        let body = json!({ "refresh_token": refresh_token });
        self.auth("/refresh", Some(body), &[]).await
    }

    /// `POST /api/validate` of `token`.
    async fn validate(&self, token: &Value) -> (StatusCode, Value) {
        self.auth("/validate", Some(json!({ "token": token })), &[])
            .await
    }

    async fn my_profile(&self, user_id: &Value, token: &Value) -> StatusCode {
        self.0
            .http
            .get(format!(
                "{}/api/users/{}",
                self.0.stack.gateway_url(),
                user_id.as_str().unwrap()
            ))
            .bearer_auth(token.as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Registers `name`, logs in and creates the profile; the login's answer.
    async fn signed_up(&self, name: &str) -> (Value, Value) {
        let (status, registered) = self.auth("/register", Some(registration(name)), &[]).await;
        assert_eq!(status, StatusCode::OK, "{registered}");
        let (status, session) = self.login(name).await;
        assert_eq!(status, StatusCode::OK, "{session}");
        let user_id = registered["user_id"].clone();
        let created = self.0
            .http
            .post(format!("{}/api/users", self.0.stack.gateway_url()))
            .bearer_auth(session["token"].as_str().unwrap())
            .json(&json!({"user_id": user_id, "username": name, "email": format!("{name}@example.com"), "full_name": name, "bio": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::OK);
        (user_id, session)
    }
}

/// The stack behind a proxy at 127.0.0.1 (`TRUSTED_PROXIES`), with `limit` set to 2
/// per client address.
async fn behind_a_proxy(limit: &str) -> Api {
    Api::memory(&[(limit, "2"), ("TRUSTED_PROXIES", "127.0.0.1")]).await
}

/// A registration of `name` (email `<name>@example.com`, password [`PASSWORD`]).
fn registration(name: &str) -> Value {
    json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})
}

/// A login of `name` with a wrong password.
fn wrong_password(name: &str) -> Option<Value> {
    Some(json!({"username": name, "password": "wrong-password"}))
}

/// Auth's 401 answer with `message`.
fn refused(message: &str) -> (StatusCode, Value) {
    (StatusCode::UNAUTHORIZED, error(401, message))
}

/// The seconds of a 429's `Retry-After`.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// login → refresh → use the new token at users → logout (with the refresh token) →
/// the token and the one issued before it in the same session are refused by auth and
/// users, and the refresh token by auth.
async fn login_refresh_logout(api: Api) {
    let (user_id, session) = api.signed_up("john_doe").await;
    let (status, refreshed) = api.refresh(&session["refresh_token"]).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(
        api.my_profile(&user_id, &refreshed["token"]).await,
        StatusCode::OK
    );

    let bearer = format!("Bearer {}", refreshed["token"].as_str().unwrap());
    let (status, body) = api
        .auth(
            "/logout",
            Some(json!({"refresh_token": refreshed["refresh_token"]})),
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"message": "Logged out successfully"})
        )
    );

    let revoked = refused("Token has been revoked");
    assert_eq!(api.validate(&refreshed["token"]).await, revoked);
    assert_eq!(
        api.my_profile(&user_id, &refreshed["token"]).await,
        StatusCode::UNAUTHORIZED
    );
    let expired = refused("Invalid or expired refresh token");
    assert_eq!(api.refresh(&refreshed["refresh_token"]).await, expired);
    assert_eq!(
        api.my_profile(&user_id, &session["token"]).await,
        StatusCode::UNAUTHORIZED,
        "an access token issued earlier in the logged-out session is refused at once too"
    );
    let (status, body) = api.validate(&session["token"]).await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("Token has been revoked"))
    );
    api.stop().await;
}

on_both_stores!(login_refresh_logout(&[]) =>
    login_refresh_and_logout_over_http_with_the_memory_store,
    login_refresh_and_logout_over_http_with_dynamodb);

#[tokio::test]
async fn in_remote_auth_mode_users_refuses_a_logged_out_token() {
    let api = Api::memory(&[("AUTH_MODE", "remote")]).await;
    let (user_id, session) = api.signed_up("john_doe").await;
    let (_, second) = api.login("john_doe").await;
    let bearer = format!("Bearer {}", second["token"].as_str().unwrap());
    let (status, _) = api
        .auth("/logout", None, &[("authorization", &bearer)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.my_profile(&user_id, &second["token"]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.my_profile(&user_id, &session["token"]).await,
        StatusCode::OK
    );
    api.stop().await;
}

/// By default nobody's `X-Forwarded-For` is believed: neither a client's sent to the
/// gateway, nor one sent straight to auth from loopback (as through `ssh -L` or a port
/// forward), so no client picks the address it is counted under.
#[tokio::test]
async fn forged_forwarded_addresses_do_not_reset_the_address_limit() {
    let api = Api::memory(&[("LOGIN_MAX_FAILURES_PER_IP", "2")]).await;
    for (name, forged) in [("anna", "203.0.113.5"), ("bert", "203.0.113.6")] {
        let (status, _) = api
            .auth(
                "/login",
                wrong_password(name),
                &[("x-forwarded-for", forged)],
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = api
        .auth(
            "/login",
            wrong_password("carl"),
            &[("x-forwarded-for", "203.0.113.7")],
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"status": "429", "message": "Too many failed login attempts, try again later"})
        )
    );
    for forged in ["203.0.113.8", "127.0.0.1", "::1"] {
        let straight = [("x-forwarded-for", forged), ("x-local-hop-key", "a guess")];
        let url = format!("{}/login", api.0.stack.auth_url());
        let response = api.post(url, wrong_password("dora"), &straight).await;
        assert_eq!(
            response.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "straight to auth, forwarding {forged}"
        );
    }
    api.stop().await;
}

/// With a proxy in front of the gateway configured (`TRUSTED_PROXIES`), failures count
/// per client it names, and auth believes the gateway's hop: one client's lockout is
/// not another's.
#[tokio::test]
async fn behind_a_trusted_proxy_failures_count_per_client_it_names() {
    let api = behind_a_proxy("LOGIN_MAX_FAILURES_PER_IP").await;
    let client = [("x-forwarded-for", "203.0.113.5")];
    for name in ["anna", "bert"] {
        let (status, _) = api.auth("/login", wrong_password(name), &client).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = api.auth("/login", wrong_password("carl"), &client).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let other = [("x-forwarded-for", "203.0.113.6")];
    assert_eq!(
        api.auth("/login", wrong_password("carl"), &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    for name in ["dora", "emil"] {
        assert_eq!(
            api.auth("/login", wrong_password(name), &[]).await.0,
            StatusCode::UNAUTHORIZED,
            "the peer itself (127.0.0.1) is a third address"
        );
    }
    let url = format!("{}/login", api.0.stack.auth_url());
    let response = api.post(url, wrong_password("fred"), &[]).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=900).contains(&retry_after(&response)));
    api.stop().await;
}

/// Registrations count per client address through the gateway: behind a trusted
/// proxy, the address its `X-Forwarded-For` names, each address apart.
#[tokio::test]
async fn registrations_count_per_forwarded_client_through_the_gateway() {
    let api = behind_a_proxy("REGISTER_MAX_PER_IP").await;
    let creds = |name: &str| Some(registration(name));
    let classroom = [("x-forwarded-for", "203.0.113.7")];
    for name in ["anna", "bert"] {
        let (status, body) = api.auth("/register", creds(name), &classroom).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let url = format!("{}/api/register", api.0.stack.gateway_url());
    let response = api.post(url, creds("carl"), &classroom).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry = retry_after(&response);
    assert!((3590..=3600).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "the spec's error shape"
    );
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"status": "429", "message": "Too many registrations from this address, try again later"})
    );
    let other = [("x-forwarded-for", "203.0.113.8")];
    assert_eq!(
        api.auth("/register", creds("carl"), &other).await.0,
        StatusCode::OK,
        "another client address is not limited"
    );
    assert_eq!(
        api.auth("/register", creds("dora"), &[]).await.0,
        StatusCode::OK,
        "the peer itself (127.0.0.1) is a third address"
    );
    api.stop().await;
}
