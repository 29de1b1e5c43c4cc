//! Circuit breakers for calls to another service: after a run of failures the breaker
//! opens and callers fail at once without touching the network; after a cool-down one
//! probe is let through (half-open), and its success closes the breaker again.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What a breaker is doing, as the gateway's health answer shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half-open",
        }
    }
}

#[derive(Debug)]
enum Inner {
    /// Failures in a row so far.
    Closed { failures: u32 },
    /// Refusing until then.
    Open { until: Instant },
    /// One probe is out; everyone else is refused until it reports.
    HalfOpen,
}

/// A breaker's thresholds (`BREAKER_FAILURES`, `BREAKER_COOLDOWN_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub failures: u32,
    /// How long an open breaker refuses before letting one probe through.
    pub cooldown: Duration,
}

impl BreakerConfig {
    pub fn read(vars: &settings::Vars) -> Result<Self, settings::ConfigError> {
        let default = Self::default();
        Ok(Self {
            failures: u32::try_from(vars.between(
                "BREAKER_FAILURES",
                default.failures.into(),
                1000,
                "",
            )?)
            .unwrap_or(u32::MAX),
            cooldown: vars.millis("BREAKER_COOLDOWN_MS", default.cooldown)?,
        })
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            cooldown: Duration::from_secs(5),
        }
    }
}

/// One breaker per downstream service, shared by every call to it.
#[derive(Debug)]
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

/// The verdict on one call, reported back with [`Breaker::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a call may go out at `now`: `false` while open, and while half-open
    /// with the probe still out. An open breaker whose cool-down has passed lets this
    /// one call through as the probe. A refusal is counted as the request's
    /// [`Event::CircuitOpen`](edge::metrics::Event::CircuitOpen).
    pub fn allow(&self, now: Instant) -> bool {
        let mut inner = self.lock();
        let allowed = match *inner {
            Inner::Closed { .. } => true,
            Inner::Open { until } if now >= until => {
                *inner = Inner::HalfOpen;
                true
            }
            Inner::Open { .. } | Inner::HalfOpen => false,
        };
        drop(inner);
        if !allowed {
            edge::metrics::count(edge::metrics::Event::CircuitOpen);
        }
        allowed
    }

    /// Reports how an allowed call went at `now`.
    pub fn record(&self, outcome: Outcome, now: Instant) {
        let mut inner = self.lock();
        *inner = match (outcome, &*inner) {
            (Outcome::Success, _) => Inner::Closed { failures: 0 },
            (Outcome::Failure, Inner::Closed { failures })
                if failures + 1 < self.config.failures =>
            {
                Inner::Closed {
                    failures: failures + 1,
                }
            }
            (Outcome::Failure, _) => Inner::Open {
                until: now + self.config.cooldown,
            },
        };
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match *self.lock() {
            Inner::Closed { .. } => BreakerState::Closed,
            Inner::Open { until } if now >= until => BreakerState::HalfOpen,
            Inner::Open { .. } => BreakerState::Open,
            Inner::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_failures_opens_it_and_a_probe_after_the_cooldown_closes_it() {
        let b = Breaker::new(BreakerConfig {
            failures: 3,
            cooldown: Duration::from_secs(5),
        });
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(b.allow(t0));
            b.record(Outcome::Failure, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Closed);
        b.record(Outcome::Success, t0);
        for _ in 0..3 {
            assert!(b.allow(t0));
            b.record(Outcome::Failure, t0);
        }
        assert_eq!(b.state(t0), BreakerState::Open);
        assert!(!b.allow(t0 + Duration::from_secs(4)));
        let later = t0 + Duration::from_secs(5);
        assert!(b.allow(later), "one probe");
        assert!(!b.allow(later), "only one");
        b.record(Outcome::Failure, later);
        assert_eq!(
            b.state(later),
            BreakerState::Open,
            "a failed probe opens it again"
        );
        let again = later + Duration::from_secs(5);
        assert!(b.allow(again));
        b.record(Outcome::Success, again);
        assert_eq!(b.state(again), BreakerState::Closed);
        assert!(b.allow(again) && b.allow(again));
    }
}
