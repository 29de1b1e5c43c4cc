//! Refresh, logout and login limits over real HTTP through the local stack's gateway,
//! with the in-memory stores and with DynamoDB tables (`DYNAMODB_ENDPOINT`).

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use local::{Ports, Stack};
use testkit::SECRET;
use testkit::dynamodb::TempTables;
use testkit::http::PASSWORD;

use crate::support::{config_with_secret, on_tables};

struct Api {
    http: Client,
    stack: Stack,
    tables: Option<TempTables>,
}

impl Api {
    async fn memory(extra: &[(&str, &str)]) -> Self {
        Self {
            http: Client::new(),
            stack: local::start(&config_with_secret(extra), Ports::ANY)
                .await
                .unwrap(),
            tables: None,
        }
    }

    async fn dynamodb() -> Option<Self> {
        let tables = TempTables::create().await?;
        let config = on_tables(&tables, &[("JWT_SECRET", SECRET)]);
        Some(Self {
            http: Client::new(),
            stack: local::start(&config, Ports::ANY).await.unwrap(),
            tables: Some(tables),
        })
    }

    async fn stop(self) {
        self.stack.stop().await;
        if let Some(tables) = self.tables {
            tables.delete().await;
        }
    }

    async fn auth(
        &self,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(format!("{}/api{path}", self.stack.gateway_url()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    async fn my_profile(&self, user_id: &Value, token: &Value) -> StatusCode {
        self.http
            .get(format!(
                "{}/api/users/{}",
                self.stack.gateway_url(),
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
        let creds =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        let (status, registered) = self.auth("/register", Some(creds), &[]).await;
        assert_eq!(status, StatusCode::OK, "{registered}");
        let (status, session) = self
            .auth(
                "/login",
                Some(json!({"username": name, "password": PASSWORD})),
                &[],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{session}");
        let user_id = registered["user_id"].clone();
        let created = self
            .http
            .post(format!("{}/api/users", self.stack.gateway_url()))
            .bearer_auth(session["token"].as_str().unwrap())
            .json(&json!({"user_id": user_id, "username": name, "email": format!("{name}@example.com"), "full_name": name, "bio": ""}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::OK);
        (user_id, session)
    }
}

/// login → refresh → use the new token at users → logout (with the refresh token) →
/// the token and the one issued before it in the same session are refused by auth and
/// users, and the refresh token by auth.
async fn login_refresh_logout(api: Api) {
    let (user_id, session) = api.signed_up("john_doe").await;
    let (status, refreshed) = api
        .auth(
            "/refresh",
            Some(json!({"refresh_token": session["refresh_token"]})),
            &[],
        )
        .await;
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

    let (status, body) = api
        .auth("/validate", Some(json!({"token": refreshed["token"]})), &[])
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"status": "401", "message": "Token has been revoked"})
        )
    );
    assert_eq!(
        api.my_profile(&user_id, &refreshed["token"]).await,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = api
        .auth(
            "/refresh",
            Some(json!({"refresh_token": refreshed["refresh_token"]})),
            &[],
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"status": "401", "message": "Invalid or expired refresh token"})
        )
    );
    assert_eq!(
        api.my_profile(&user_id, &session["token"]).await,
        StatusCode::UNAUTHORIZED,
        "an access token issued earlier in the logged-out session is refused at once too"
    );
    let (status, body) = api
        .auth("/validate", Some(json!({"token": session["token"]})), &[])
        .await;
    assert_eq!(
        (status, body["message"].clone()),
        (StatusCode::UNAUTHORIZED, json!("Token has been revoked"))
    );
    api.stop().await;
}

#[tokio::test]
async fn login_refresh_and_logout_over_http_with_the_memory_store() {
    login_refresh_logout(Api::memory(&[]).await).await;
}

#[tokio::test]
async fn login_refresh_and_logout_over_http_with_dynamodb() {
    let Some(api) = Api::dynamodb().await else {
        return;
    };
    login_refresh_logout(api).await;
}

#[tokio::test]
async fn in_remote_auth_mode_users_refuses_a_logged_out_token() {
    let api = Api::memory(&[("AUTH_MODE", "remote")]).await;
    let (user_id, session) = api.signed_up("john_doe").await;
    let (_, second) = api
        .auth(
            "/login",
            Some(json!({"username": "john_doe", "password": PASSWORD})),
            &[],
        )
        .await;
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
    let wrong = |name: &str| Some(json!({"username": name, "password": "wrong-password"}));
    for (name, forged) in [("anna", "203.0.113.5"), ("bert", "203.0.113.6")] {
        let (status, _) = api
            .auth("/login", wrong(name), &[("x-forwarded-for", forged)])
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = api
        .auth(
            "/login",
            wrong("carl"),
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
        let response = api
            .http
            .post(format!("{}/login", api.stack.auth_url()))
            .header("x-forwarded-for", forged)
            .header("x-local-hop-key", "a guess")
            .json(&wrong("dora"))
            .send()
            .await
            .unwrap();
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
    let api = Api::memory(&[
        ("LOGIN_MAX_FAILURES_PER_IP", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let wrong = |name: &str| Some(json!({"username": name, "password": "wrong-password"}));
    let client = [("x-forwarded-for", "203.0.113.5")];
    for name in ["anna", "bert"] {
        let (status, _) = api.auth("/login", wrong(name), &client).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = api.auth("/login", wrong("carl"), &client).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let other = [("x-forwarded-for", "203.0.113.6")];
    assert_eq!(
        api.auth("/login", wrong("carl"), &other).await.0,
        StatusCode::UNAUTHORIZED
    );
    for name in ["dora", "emil"] {
        assert_eq!(
            api.auth("/login", wrong(name), &[]).await.0,
            StatusCode::UNAUTHORIZED,
            "the peer itself (127.0.0.1) is a third address"
        );
    }
    let response = api
        .http
        .post(format!("{}/login", api.stack.auth_url()))
        .json(&wrong("fred"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
    api.stop().await;
}

/// Registrations count per client address through the gateway: behind a trusted
/// proxy, the address its `X-Forwarded-For` names, each address apart.
#[tokio::test]
async fn registrations_count_per_forwarded_client_through_the_gateway() {
    let api = Api::memory(&[
        ("REGISTER_MAX_PER_IP", "2"),
        ("TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let creds = |name: &str| {
        Some(
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD}),
        )
    };
    let classroom = [("x-forwarded-for", "203.0.113.7")];
    for name in ["anna", "bert"] {
        let (status, body) = api.auth("/register", creds(name), &classroom).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let response = api
        .http
        .post(format!("{}/api/register", api.stack.gateway_url()))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&creds("carl"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
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
