//! The test kit, a dev-dependency only: the harness core every crate's tests share, and
//! the switch for tests that need outside servers; submodules for each kind of test.

use std::sync::Arc;

use serde_json::Value;

pub mod app;
pub mod attacks;
pub mod dynamodb;
pub mod http;
pub mod lambda;
pub mod mail;

pub use app::*;
pub use attacks::{jwt_attacks, under_made_up_key_id};
pub use lambda::*;

/// The signing secret of every test that does not need its own.
pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// Access tokens signed with [`SECRET`], valid for a day.
pub fn tokens() -> Arc<tokens::Tokens> {
    let secret = settings::Secret::new(SECRET.into()).expect("SECRET is long enough");
    Arc::new(
        tokens::Tokens::new(&secret, std::time::Duration::from_secs(86400)).expect("test tokens"),
    )
}

/// The configuration `pairs` give, never the process environment; bcrypt at its
/// lowest cost, and a minute's wait for a bcrypt slot (tests that race many hashes
/// check what they decide, not load shedding), unless `pairs` say otherwise.
pub fn config<C: settings::ReadConfig>(pairs: &[(&str, &str)]) -> C {
    try_config(pairs).expect("test configuration is valid")
}

/// [`config`], returning the error a bad value gives.
pub fn try_config<C: settings::ReadConfig>(
    pairs: &[(&str, &str)],
) -> Result<C, settings::ConfigError> {
    let vars: std::collections::HashMap<&str, &str> =
        [("BCRYPT_COST", "4"), ("BCRYPT_QUEUE_MS", "60000")]
            .into_iter()
            .chain(pairs.iter().copied())
            .collect();
    C::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()))
}

/// Starts the binary at `path` (named `name`) with only `env` and asserts it refuses to
/// start as every binary does: exit code [`settings::CANNOT_START`] within 10 s and
/// one stderr line `{name}: cannot start: ...`, which it returns.
pub fn assert_cannot_start(path: &str, name: &str, env: &[(&str, &str)]) -> String {
    let started = std::time::Instant::now();
    let out = std::process::Command::new(path)
        .env_clear()
        .env("RUST_LOG", "off")
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {path}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(settings::CANNOT_START),
        "{name} with {env:?}: {stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("{name}: cannot start: ")),
        "{stderr}"
    );
    stderr
}

/// [`assert_cannot_start`] with a malformed `REQUEST_TIMEOUT_MS`, which every binary
/// reads: the one line names the variable.
pub fn assert_malformed_value_stops(path: &str, name: &str) {
    let stderr = assert_cannot_start(path, name, &[("REQUEST_TIMEOUT_MS", "soon")]);
    assert!(
        stderr.contains("REQUEST_TIMEOUT_MS must be a whole number"),
        "{stderr}"
    );
}

/// The API's error body for `status` and `message`.
pub fn error(status: u16, message: &str) -> Value {
    serde_json::json!({"status": status.to_string(), "message": message})
}

/// Whether a test that needs an outside server (named by `var`) should run. In CI
/// (`CI` set) a missing server is a failure; elsewhere the test is skipped loudly.
pub fn require_env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: this test needs its server (run scripts/test.sh)")
        }
        _ => {
            eprintln!(
                "\n*** SKIPPED: {var} is not set; run scripts/test.sh to start the server ***\n"
            );
            None
        }
    }
}
