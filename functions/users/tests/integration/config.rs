//! The users function's start-up: configuration read once; in local auth mode HS256
//! with `JWT_SECRET`, else EdDSA with published public keys and no secret at all; no
//! start in remote mode without the auth service's URL.

use std::process::Command;

use testkit::{config, try_config};

#[tokio::test]
async fn local_mode_starts_with_or_without_a_secret_and_remote_mode_needs_none() {
    assert!(
        users::AppState::from_config(&config(&[("BCRYPT_COST", "4")]))
            .await
            .is_ok(),
        "EdDSA: users holds no key at all"
    );
    assert!(
        users::AppState::from_config(&config(&[(
            "JWT_SECRET",
            "a-secret-that-is-at-least-32-bytes-long"
        )]))
        .await
        .is_ok()
    );
    assert!(
        users::AppState::from_config(&config(&[
            ("AUTH_MODE", "remote"),
            ("AUTH_SERVICE_URL", "http://127.0.0.1:9")
        ]))
        .await
        .is_ok()
    );
}

#[tokio::test]
async fn remote_mode_needs_auth_service_url_and_says_so() {
    let err = users::AppState::from_config(&config(&[("AUTH_MODE", "remote")]))
        .await
        .err()
        .expect("no auth URL, no remote mode");
    let err = err.to_string();
    assert!(err.contains("AUTH_SERVICE_URL"), "{err}");
    assert!(err.contains("AUTH_MODE=remote"), "{err}");
}

#[test]
fn remote_mode_refuses_an_auth_url_it_cannot_call() {
    for url in ["not a url", "ftp://auth.example.com", "localhost:3000"] {
        let err =
            try_config::<users::Config>(&[("AUTH_MODE", "remote"), ("AUTH_SERVICE_URL", url)])
                .expect_err("refused");
        assert!(err.to_string().contains("AUTH_SERVICE_URL"), "{url}: {err}");
    }
}

#[test]
fn the_lambda_binary_in_remote_mode_refuses_to_start_without_auth_service_url() {
    let output = Command::new(env!("CARGO_BIN_EXE_users"))
        .env_clear()
        .env("AUTH_MODE", "remote")
        .env("RUST_LOG", "off")
        .output()
        .expect("the users binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("users: cannot start") && stderr.contains("AUTH_SERVICE_URL"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_value_stops_the_binary_like_every_other() {
    testkit::assert_malformed_value_stops(env!("CARGO_BIN_EXE_users"), "users");
}

#[test]
fn a_state_that_cannot_be_built_stops_the_binary_the_same_way() {
    let stderr = testkit::assert_cannot_start(
        env!("CARGO_BIN_EXE_users"),
        "users",
        &[("AUTH_MODE", "remote")],
    );
    assert!(stderr.contains("AUTH_SERVICE_URL"), "{stderr}");
}
