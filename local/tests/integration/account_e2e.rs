//! A user's account over its whole life through the local stack's gateway, with the
//! in-memory stores and with DynamoDB tables (`DYNAMODB_ENDPOINT`): sessions listed and
//! ended, the password changed, the account deleted, and no token outliving the event
//! that should end it, at auth (`/validate`, `/refresh`) and at users.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use testkit::http::PASSWORD;

use crate::support::{Running, on_both_stores};

const NEW_PASSWORD: &str = "a-brand-new-passphrase-42";

/// Limits low enough to reach in a test: three wrong passwords lock the username.
const LIMITS: &[(&str, &str)] = &[("LOGIN_MAX_FAILURES_PER_USER", "3")];

/// What one request answered.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

/// The stack of a test, with the calls this file makes.
struct Api(Running);

impl From<Running> for Api {
    fn from(running: Running) -> Self {
        Self(running)
    }
}

impl Api {
    async fn stop(self) {
        self.0.stop().await;
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        user_agent: Option<&str>,
    ) -> Answer {
        let mut request = self
            .0
            .http
            .request(method, format!("{}/api{path}", self.0.stack.gateway_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(ua) = user_agent {
            request = request.header("user-agent", ua);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.json().await.unwrap();
        Answer {
            status,
            retry_after,
            body,
        }
    }

    /// `POST /api{path}` of `body` without a token.
    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, None, Some(body), None).await
    }

    async fn register(&self, name: &str) -> Answer {
        let creds =
            json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
        self.post("/register", creds).await
    }

    async fn login(&self, name: &str, password: &str, device: &str) -> Answer {
        let creds = json!({"username": name, "password": password});
        self.call(Method::POST, "/login", None, Some(creds), Some(device))
            .await
    }

    /// A login that must succeed: its access and refresh tokens.
    async fn session(&self, name: &str, device: &str) -> (String, String) {
        let answer = self.login(name, PASSWORD, device).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let text = |k: &str| answer.body[k].as_str().unwrap().to_owned();
        (text("token"), text("refresh_token"))
    }

    /// `GET /api/users/{user_id}` with `token`.
    async fn profile(&self, token: &str, user_id: &str) -> Answer {
        let path = format!("/users/{user_id}");
        self.call(Method::GET, &path, Some(token), None, None).await
    }

    /// `DELETE /api/sessions/{id}` with `token`.
    async fn end_session(&self, token: &str, id: &str) -> Answer {
        let path = format!("/sessions/{id}");
        self.call(Method::DELETE, &path, Some(token), None, None)
            .await
    }

    /// `POST /api/password` with `token`, from `current` to `new`.
    async fn change_password(&self, token: &str, current: &str, new: &str) -> Answer {
        let change = json!({"current_password": current, "new_password": new});
        self.call(Method::POST, "/password", Some(token), Some(change), None)
            .await
    }

    /// `DELETE /api/account` with `token`, confirmed with `password`.
    async fn delete_account(&self, token: &str, password: &str) -> Answer {
        let confirmation = json!({"password": password});
        self.call(
            Method::DELETE,
            "/account",
            Some(token),
            Some(confirmation),
            None,
        )
        .await
    }

    /// What users and auth say of `token`: the status of `GET /api/users/{user_id}` and
    /// of `/validate`.
    async fn token_status(&self, token: &str, user_id: &str) -> (StatusCode, StatusCode) {
        let users = self.profile(token, user_id).await.status;
        let auth = self
            .post("/validate", json!({ "token": token }))
            .await
            .status;
        (users, auth)
    }

    async fn refresh(&self, refresh_token: &str) -> Answer {
        self.post("/refresh", json!({ "refresh_token": refresh_token }))
            .await
    }

    async fn sessions(&self, token: &str) -> Vec<Value> {
        let answer = self
            .call(Method::GET, "/sessions", Some(token), None, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        answer.body["sessions"].as_array().unwrap().clone()
    }
}

fn sid_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let claims: Value = serde_json::from_slice(&bytes).unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

const LIVE: (StatusCode, StatusCode) = (StatusCode::OK, StatusCode::OK);
const REFUSED: (StatusCode, StatusCode) = (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED);

async fn an_account_over_its_whole_life(api: Api) {
    let registered = api.register("alice").await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    let alice = registered.body["user_id"].as_str().unwrap().to_owned();
    let (phone, phone_refresh) = api.session("alice", "phone/1.0").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (laptop, laptop_refresh) = api.session("alice", "laptop/2.0").await;
    let profile = json!({"user_id": alice, "username": "alice", "email": "alice@example.com", "full_name": "Alice", "bio": ""});
    let created = api
        .call(Method::POST, "/users", Some(&phone), Some(profile), None)
        .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(api.register("bob").await.status, StatusCode::OK);
    let (bob, _) = api.session("bob", "bob/1").await;

    // Sessions: listed newest first, the current one marked.
    let listed = api.sessions(&phone).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[0]["id"], sid_of(&laptop));
    assert_eq!(listed[0]["user_agent"], "laptop/2.0");
    assert_eq!(listed[0]["current"], false);
    assert_eq!(listed[1]["id"], sid_of(&phone));
    assert_eq!(listed[1]["current"], true);
    assert_eq!(listed[1]["user_agent"], "phone/1.0");
    for s in &listed {
        assert!(s["ip_address"].is_string(), "{s}");
        for at in ["created_at", "last_used_at"] {
            let text = s[at].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                "{at}: {text}"
            );
        }
    }
    assert_eq!(api.sessions(&bob).await.len(), 1, "bob sees only his own");

    // Ending one: never another user's; at once for every token of it.
    let laptop_sid = sid_of(&laptop);
    for (who, id) in [
        (&bob, laptop_sid.clone()),
        (&phone, Uuid::new_v4().to_string()),
        (&phone, "not-a-uuid".to_owned()),
    ] {
        let answer = api.end_session(who, &id).await;
        assert_eq!(
            (answer.status, answer.body),
            (
                StatusCode::NOT_FOUND,
                json!({"status": "404", "message": "Session not found"})
            ),
            "{id}"
        );
    }
    assert_eq!(api.token_status(&laptop, &alice).await, LIVE);
    let rotated = api.refresh(&laptop_refresh).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let laptop_next = rotated.body["token"].as_str().unwrap().to_owned();
    let ended = api.end_session(&phone, &laptop_sid).await;
    assert_eq!(
        (ended.status, ended.body),
        (StatusCode::OK, json!({"message": "Session ended"}))
    );
    assert_eq!(api.token_status(&laptop, &alice).await, REFUSED);
    assert_eq!(api.token_status(&laptop_next, &alice).await, REFUSED);
    let refresh_token = rotated.body["refresh_token"].as_str().unwrap();
    assert_eq!(
        api.refresh(refresh_token).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api.token_status(&phone, &alice).await, LIVE);
    assert_eq!(api.sessions(&phone).await.len(), 1);

    // Password change: wrong, unchanged and weak passwords refused; then every other
    // session ends and the old password stops working.
    let (tablet, tablet_refresh) = api.session("alice", "tablet").await;
    let wrong = api
        .change_password(&phone, "wrong-password-1", NEW_PASSWORD)
        .await;
    assert_eq!(
        (wrong.status, wrong.body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"status": "401", "message": "Current password is incorrect"})
        )
    );
    for (new, why) in [(PASSWORD, "the same"), ("short", "too short")] {
        let answer = api.change_password(&phone, PASSWORD, new).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{why}: {}",
            answer.body
        );
        assert_eq!(answer.body["status"], "400");
    }
    assert_eq!(
        api.token_status(&tablet, &alice).await,
        LIVE,
        "nothing changed yet"
    );
    let changed = api.change_password(&phone, PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        (changed.status, changed.body),
        (
            StatusCode::OK,
            json!({"message": "Password changed successfully", "sessions_ended": 1})
        )
    );
    assert_eq!(api.token_status(&tablet, &alice).await, REFUSED);
    assert_eq!(
        api.refresh(&tablet_refresh).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        api.token_status(&phone, &alice).await,
        LIVE,
        "the current session stays"
    );
    let rotated = api.refresh(&phone_refresh).await;
    assert_eq!(rotated.status, StatusCode::OK, "and refreshes");
    let phone = rotated.body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        api.login("alice", PASSWORD, "x").await.status,
        StatusCode::UNAUTHORIZED,
        "the old password fails at once"
    );
    let relogin = api.login("alice", NEW_PASSWORD, "desktop").await;
    assert_eq!(relogin.status, StatusCode::OK);
    let desktop = relogin.body["token"].as_str().unwrap().to_owned();
    assert_eq!(api.sessions(&phone).await.len(), 2);

    // Deletion: a wrong password changes nothing; then every token goes, the profile
    // and the names with it, and asking again gives the same answer.
    let refused = api.delete_account(&phone, PASSWORD).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.body["message"], "Current password is incorrect");
    assert_eq!(api.token_status(&phone, &alice).await, LIVE);
    for _ in 0..2 {
        let deleted = api.delete_account(&phone, NEW_PASSWORD).await;
        assert_eq!(
            (deleted.status, deleted.body),
            (
                StatusCode::OK,
                json!({"message": "Account deleted successfully"})
            )
        );
    }
    assert_eq!(api.token_status(&phone, &alice).await, REFUSED);
    assert_eq!(api.token_status(&desktop, &alice).await, REFUSED);
    let gone = api.profile(&bob, &alice).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "the profile went too");
    assert_eq!(
        api.login("alice", NEW_PASSWORD, "x").await.status,
        StatusCode::UNAUTHORIZED
    );
    let again = api.register("alice").await;
    assert_eq!(
        again.status,
        StatusCode::OK,
        "username and email are free again"
    );
    assert_ne!(again.body["user_id"], alice);
    assert_eq!(
        api.token_status(&bob, &alice).await,
        (StatusCode::NOT_FOUND, StatusCode::OK),
        "bob is untouched"
    );
    api.stop().await;
}

on_both_stores!(an_account_over_its_whole_life(LIMITS) =>
    an_account_over_its_whole_life_with_the_memory_store,
    an_account_over_its_whole_life_on_dynamodb);

/// A wrong current password counts like a failed login: past the limit, 429 with
/// `Retry-After`, and the right password is refused too until the window closes.
async fn wrong_passwords_lock_the_password_routes(api: Api) {
    assert_eq!(api.register("carol").await.status, StatusCode::OK);
    let (token, _) = api.session("carol", "x").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let answer = api
            .change_password(&token, "not-her-password", NEW_PASSWORD)
            .await;
        statuses.push(answer.status);
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert!(answer.retry_after.is_some(), "Retry-After");
            assert_eq!(answer.body["status"], "429");
        }
    }
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
    let locked = api.delete_account(&token, PASSWORD).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "deletion counts the same"
    );
    assert_eq!(
        api.login("carol", PASSWORD, "x").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    api.stop().await;
}

on_both_stores!(wrong_passwords_lock_the_password_routes(LIMITS) =>
    wrong_passwords_lock_the_password_routes_with_the_memory_store,
    wrong_passwords_lock_the_password_routes_on_dynamodb);

/// Deletion racing a refresh and a login of the same user: whatever order they run
/// in, no token they hand out works afterwards.
async fn a_deletion_racing_a_refresh_and_a_login_leaves_no_live_token(api: Api) {
    for round in 0..3 {
        let name = format!("dave{round}");
        let registered = api.register(&name).await;
        assert_eq!(registered.status, StatusCode::OK);
        let user_id = registered.body["user_id"].as_str().unwrap().to_owned();
        let (token, refresh_token) = api.session(&name, "x").await;
        let (deleted, refreshed, logged_in) = tokio::join!(
            api.delete_account(&token, PASSWORD),
            api.refresh(&refresh_token),
            api.login(&name, PASSWORD, "y"),
        );
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
        for answer in [refreshed, logged_in] {
            assert!(
                matches!(answer.status, StatusCode::OK | StatusCode::UNAUTHORIZED),
                "{}: {}",
                answer.status,
                answer.body
            );
            if answer.status == StatusCode::OK {
                let token = answer.body["token"].as_str().unwrap();
                assert_eq!(api.token_status(token, &user_id).await, REFUSED);
                let refresh_token = answer.body["refresh_token"].as_str().unwrap();
                assert_eq!(
                    api.refresh(refresh_token).await.status,
                    StatusCode::UNAUTHORIZED
                );
            }
        }
        assert_eq!(api.token_status(&token, &user_id).await, REFUSED);
    }
    api.stop().await;
}

on_both_stores!(a_deletion_racing_a_refresh_and_a_login_leaves_no_live_token(LIMITS) =>
    a_deletion_racing_a_refresh_and_a_login_leaves_no_live_token_in_memory,
    a_deletion_racing_a_refresh_and_a_login_leaves_no_live_token_on_dynamodb);
