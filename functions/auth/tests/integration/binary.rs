//! The Lambda binary refuses to start without a usable signing secret.

use std::process::Command;
use std::time::{Duration, Instant};

fn start(secret: Option<&str>) -> (i32, String, Duration) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth"));
    cmd.env_remove("JWT_SECRET").env("RUST_LOG", "off");
    if let Some(secret) = secret {
        cmd.env("JWT_SECRET", secret);
    }
    let started = Instant::now();
    let out = cmd.output().expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_missing_secret_stops_the_binary_with_a_clear_message() {
    let (code, stderr, took) = start(None);
    assert_eq!(code, 78);
    assert!(
        stderr.contains("neither JWT_SIGNING_KEY nor JWT_SECRET is set"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(5));
}

#[test]
fn a_short_secret_stops_the_binary_without_echoing_it() {
    let (code, stderr, _) = start(Some("short-secret-value"));
    assert_eq!(code, 78);
    assert!(stderr.contains("at least 32 bytes"), "{stderr}");
    assert!(!stderr.contains("short-secret-value"));
}

#[test]
fn a_malformed_value_stops_the_binary_like_every_other() {
    testkit::assert_malformed_value_stops(env!("CARGO_BIN_EXE_auth"), "auth");
}

#[test]
fn a_state_that_cannot_be_built_stops_the_binary_the_same_way() {
    let stderr = testkit::assert_cannot_start(env!("CARGO_BIN_EXE_auth"), "auth", &[]);
    assert!(
        stderr.contains("neither JWT_SIGNING_KEY nor JWT_SECRET is set"),
        "{stderr}"
    );
    let both = [
        (
            "JWT_SIGNING_KEY",
            "an-ed25519-key-material-of-32-bytes-or-more",
        ),
        ("JWT_SECRET", "an-hs256-secret-of-at-least-32-bytes-long"),
    ];
    let stderr = testkit::assert_cannot_start(env!("CARGO_BIN_EXE_auth"), "auth", &both);
    assert!(stderr.contains("not both"), "{stderr}");
    assert!(!stderr.contains("an-ed25519-key-material"), "never echoed");
}
