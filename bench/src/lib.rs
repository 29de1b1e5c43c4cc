//! Measurement helpers behind `bench/bench.sh`: raw bcrypt rate, a paced latency probe,
//! bearer tokens signed like auth's, and a Lambda Runtime API stub (`runtime`).

pub mod runtime;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use settings::Secret;
use tokens::Tokens;
use uuid::Uuid;

/// bcrypt verifications of a `cost` hash completed by `threads` threads in `wall` time.
#[derive(Debug, Clone, Copy)]
pub struct BcryptRate {
    pub threads: usize,
    pub verifies: u64,
    pub wall: Duration,
}

impl BcryptRate {
    pub fn per_sec(&self) -> f64 {
        self.verifies as f64 / self.wall.as_secs_f64()
    }
}

/// Runs `bcrypt::verify` of a correct password against one `cost` hash on `threads`
/// threads for about `duration`; every thread finishes the verification it started.
pub fn bcrypt_rate(cost: u32, threads: usize, duration: Duration) -> Result<BcryptRate, String> {
    let password = "securePassword123";
    let hash = bcrypt::hash(password, cost).map_err(|e| e.to_string())?;
    let hash = Arc::new(hash);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (hash, stop, done) = (hash.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if bcrypt::verify(password, &hash).unwrap_or(false) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker
            .join()
            .map_err(|_| "a bcrypt thread panicked".to_owned())?;
    }
    Ok(BcryptRate {
        threads,
        verifies: done.load(Ordering::Relaxed),
        wall: start.elapsed(),
    })
}

/// Latencies of requests sent one at a time at a fixed pace.
#[derive(Debug, Default)]
pub struct Probe {
    pub latencies: Vec<Duration>,
    pub errors: u64,
}

/// `GET url` over one keep-alive connection, one request every `1/rate` s for
/// `duration` (a slow answer delays the next tick instead of bunching requests up).
pub async fn probe(url: &str, rate: u32, duration: Duration) -> Result<Probe, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1) / rate.max(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + duration;
    let mut out = Probe::default();
    while Instant::now() < end {
        tick.tick().await;
        let start = Instant::now();
        let ok = match client.get(url).send().await {
            Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
            Err(_) => false,
        };
        if ok {
            out.latencies.push(start.elapsed());
        } else {
            out.errors += 1;
        }
    }
    Ok(out)
}

/// `count` access tokens for one user in session `sid`, signed with `secret` exactly as
/// auth signs them, each with its own `jti`. They pass only while that session is live
/// in the store the service reads (log in once and pass its `sid`).
pub fn tokens(
    secret: &str,
    user_id: Uuid,
    username: &str,
    sid: Uuid,
    count: usize,
) -> Result<Vec<String>, String> {
    let secret = Secret::new(secret.to_owned()).map_err(|e| e.to_string())?;
    let tokens = Tokens::new(&secret, Duration::from_secs(24 * 3600)).map_err(|e| e.to_string())?;
    (0..count)
        .map(|_| {
            tokens
                .issue(user_id, username, sid)
                .map(|issued| issued.token)
                .map_err(|e| e.to_string())
        })
        .collect()
}
