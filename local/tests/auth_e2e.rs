//! The local stack over real HTTP: auth on a free port, driven as curl would.

use std::collections::HashMap;

use local::{Ports, Stack};
use serde_json::{json, Value};
use shared::Config;

async fn stack() -> Stack {
    let env: HashMap<&str, &str> = HashMap::from([("BCRYPT_COST", "4")]);
    let config = Config::from_lookup(|k| env.get(k).map(|v| v.to_string())).unwrap();
    local::start(&config, Ports::ANY).await.unwrap()
}

async fn post(url: String, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn register_login_and_validate_over_real_http() {
    let stack = stack().await;
    let base = stack.auth_url();

    let health: Value = reqwest::get(format!("{base}/"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["message"], "API is running");

    let creds = json!({"username": "john_doe", "email": "john@example.com", "password": "securePassword123"});
    let (status, registered) = post(format!("{base}/register"), creds.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = post(format!("{base}/register"), creds).await;
    assert_eq!(
        (status, body),
        (
            409,
            json!({"status": "409", "message": "Username already exists"})
        )
    );

    let (status, login) = post(
        format!("{base}/login"),
        json!({"username": "john_doe", "password": "securePassword123"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(login["expires_in"], 86400);

    let (status, valid) = post(format!("{base}/validate"), json!({"token": login["token"]})).await;
    assert_eq!(status, 200);
    assert_eq!(valid["user_id"], registered["user_id"]);

    let (status, body) = post(
        format!("{base}/login"),
        json!({"username": "john_doe", "password": "wrong-password"}),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("Invalid username or password"))
    );
    stack.stop().await;
}

#[tokio::test]
async fn a_stopped_stack_releases_its_ports() {
    let stack = stack().await;
    let addr = stack.auth;
    stack.stop().await;
    assert!(
        tokio::net::TcpListener::bind(addr).await.is_ok(),
        "port {addr} is free again"
    );
}
