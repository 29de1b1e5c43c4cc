//! `cargo run -p local` as a user runs it: serves on the ports it is given, logs each
//! request, and stops cleanly on Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn the_local_binary_serves_and_stops_cleanly_on_ctrl_c() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .env_remove("JWT_SECRET")
        .env_remove("STORE")
        .envs([
            ("AUTH_PORT", "0"),
            ("USERS_PORT", "0"),
            ("GATEWAY_PORT", "0"),
        ])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("local starts");
    let (lines_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line = |what: &str| {
        lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no log line while waiting for {what}"))
    };
    let mut seen = Vec::new();
    let auth_url = loop {
        let line = next_line("the auth address");
        if let Some(url) = line
            .split("auth service")
            .nth(1)
            .and_then(|l| l.split(" on ").nth(1))
        {
            break url.trim().to_owned();
        }
        seen.push(line);
    };
    assert!(
        seen.iter()
            .any(|l| l.contains("neither JWT_SIGNING_KEY nor JWT_SECRET is set")),
        "a generated key is announced: {seen:?}"
    );

    let body = reqwest::blocking::get(format!("{auth_url}/"))
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("API is running"));
    let access = (0..50)
        .map(|_| next_line("the access log line"))
        .find(|l| l.contains("access"))
        .expect("an access log line");
    for part in ["GET", "route=\"/\"", "status=200", "latency_ms="] {
        assert!(access.contains(part), "{part} missing from {access}");
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "local did not stop on SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit, got {status:?}");
}

#[test]
fn a_malformed_value_stops_the_binary_like_every_other() {
    testkit::assert_malformed_value_stops(env!("CARGO_BIN_EXE_local"), "local");
}

#[test]
fn a_stack_that_cannot_be_started_stops_the_binary_the_same_way() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let stderr = testkit::assert_cannot_start(
        env!("CARGO_BIN_EXE_local"),
        "local",
        &[
            ("AUTH_PORT", &port),
            ("USERS_PORT", "0"),
            ("GATEWAY_PORT", "0"),
        ],
    );
    assert!(stderr.to_lowercase().contains("in use"), "{stderr}");
    let stderr = testkit::assert_cannot_start(
        env!("CARGO_BIN_EXE_local"),
        "local",
        &[("AUTH_PORT", "three thousand")],
    );
    assert!(
        stderr.contains("AUTH_PORT must be a port number"),
        "{stderr}"
    );
}

#[test]
fn local_emulate_reads_the_local_servers_limits_and_refuses_bad_ones() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["emulate", "--port", "0"])
        .env_clear()
        .env("RUST_LOG", "off")
        .env("MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(settings::CANNOT_START), "{stderr}");
    assert!(
        stderr.starts_with("local emulate: cannot start:") && stderr.contains("MAX_CONNECTIONS"),
        "{stderr}"
    );
}
