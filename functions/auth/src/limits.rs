//! Brute-force protection: every login attempt is counted per username and per client
//! address before the password is checked (so attempts still in flight count), and
//! refused with 429 past the limits; every registration is counted per client address
//! before its password is hashed. An IPv6 client counts by its /64
//! ([`limited_address`]).

use std::net::IpAddr;
use std::time::Duration;

use chrono::Utc;

use crate::config::{LoginLimits, RegisterLimits};
use domain::Username;
use edge::client_ip::limited_address;
use errors::Error;
use stores::{AttemptKey, Attempts, LoginAttemptStore, MailRequest, Settle};

/// Attempts counted for one login; a success gives them back.
#[must_use]
pub struct Reservation {
    user: Option<AttemptKey>,
    ip: Option<AttemptKey>,
}

/// Counts this attempt against the client address, then against the username, and
/// refuses it as soon as one count passes its limit. Counting first (one atomic `ADD`
/// each) is what keeps parallel guesses from slipping past: each sees its own count.
/// An address already locked out does not count against the username it tried.
pub async fn reserve(
    store: &dyn LoginAttemptStore,
    limits: &LoginLimits,
    username: Option<&Username>,
    ip: Option<IpAddr>,
) -> Result<Reservation, Error> {
    let now = Utc::now().timestamp();
    let ip = ip.map(|ip| AttemptKey::Ip(limited_address(ip)));
    if let Some(key) = &ip {
        let attempts = store.count_attempt(key, limits.window, now).await?;
        if attempts.count > limits.per_ip {
            return Err(locked("address", attempts, now, limits.window));
        }
    }
    let user = username.map(AttemptKey::user);
    if let Some(key) = &user {
        let attempts = store.count_attempt(key, limits.window, now).await?;
        if attempts.count > limits.per_user {
            return Err(locked("username", attempts, now, limits.window));
        }
    }
    Ok(Reservation { user, ip })
}

/// Counts one registration against the client address (one atomic `ADD`, so parallel
/// registrations each see their own count) and refuses it past the limit, before any
/// bcrypt runs. Nothing is given back: a registration that then fails (a taken name)
/// has cost its hash all the same. Without an address (a router called directly)
/// nothing is counted.
pub async fn count_registration(
    store: &dyn LoginAttemptStore,
    limits: &RegisterLimits,
    ip: Option<IpAddr>,
) -> Result<(), Error> {
    let Some(ip) = ip else {
        return Ok(());
    };
    let now = Utc::now().timestamp();
    let attempts = store
        .count_attempt(
            &AttemptKey::Register(limited_address(ip)),
            limits.window,
            now,
        )
        .await?;
    if attempts.count > limits.per_ip {
        let retry_after_secs = retry_after(attempts, now, limits.window);
        tracing::warn!(
            retry_after_secs,
            "registration refused: too many from this address"
        );
        return Err(Error::RegisterLimited { retry_after_secs });
    }
    Ok(())
}

/// Gives back a registration counted by [`count_registration`] that hashed nothing
/// (refused with [`Error::PasswordChecksBusy`]). A store failure here is logged.
pub async fn uncount_registration(store: &dyn LoginAttemptStore, ip: Option<IpAddr>) {
    let Some(ip) = ip else {
        return;
    };
    let key = AttemptKey::Register(limited_address(ip));
    if let Err(err) = store.release_attempt(&key, Utc::now().timestamp()).await {
        tracing::warn!(error = ?err, "could not give back a registration that hashed nothing");
    }
}

/// Counts one mail asked for by `who` and refuses it past `max` in `window` (429 with
/// `Retry-After`): nothing is given back, as a mail asked for is one sent (or, for an
/// unknown address, one that would have been).
pub async fn count_mail(
    store: &dyn LoginAttemptStore,
    who: MailRequest,
    max: u64,
    window: Duration,
) -> Result<(), Error> {
    let now = Utc::now().timestamp();
    let attempts = store
        .count_attempt(&AttemptKey::Mail(who), window, now)
        .await?;
    if attempts.count > max {
        let retry_after_secs = retry_after(attempts, now, window);
        tracing::warn!(retry_after_secs, "mail refused: too many asked for");
        return Err(Error::MailLimited { retry_after_secs });
    }
    Ok(())
}

/// Whole seconds until the window closes: at least 1, and at most the window itself. A
/// parallel attempt that read the clock a second earlier than the one that opened the
/// window would otherwise be told one second more than the window lasts.
fn retry_after(attempts: Attempts, now: i64, window: Duration) -> u64 {
    u64::try_from(attempts.window_ends_at - now)
        .unwrap_or(1)
        .clamp(1, window.as_secs().max(1))
}

fn locked(by: &'static str, attempts: Attempts, now: i64, window: Duration) -> Error {
    let retry_after_secs = retry_after(attempts, now, window);
    tracing::warn!(
        locked_by = by,
        retry_after_secs,
        "login refused: too many failed attempts"
    );
    Error::LoginLocked { retry_after_secs }
}

impl Reservation {
    /// The login succeeded: the username's failures are forgotten and the address gets
    /// this attempt back, in the same store step that starts the session
    /// ([`SessionStore::start_login`](stores::SessionStore::start_login)).
    pub fn settle(self) -> Settle {
        Settle {
            clear: self.user,
            release: self.ip,
            now: Utc::now().timestamp(),
        }
    }

    /// The password was never checked (every bcrypt slot was busy,
    /// [`Error::PasswordChecksBusy`]): the attempt is given back to the username and
    /// the address alike, so that load shed from others never locks anyone out. A
    /// store failure here is logged.
    pub async fn unchecked(&self, store: &dyn LoginAttemptStore) {
        let now = Utc::now().timestamp();
        for key in [&self.user, &self.ip].into_iter().flatten() {
            if let Err(err) = store.release_attempt(key, now).await {
                tracing::warn!(error = ?err, "could not give back an unchecked attempt");
            }
        }
    }

    /// The password was right where no session starts (a password change or an
    /// account deletion confirming it): the same settlement, in calls of its own. A
    /// store failure here is logged, not fatal to the request.
    pub async fn succeeded(self, store: &dyn LoginAttemptStore) {
        if let Err(err) = self.settle().apply(store).await {
            tracing::warn!(error = ?err, "could not settle the attempts of a confirmed password");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_the_rest_of_the_window_within_one_second_and_the_window() {
        let window = Duration::from_secs(3600);
        let at = |window_ends_at| Attempts {
            count: 6,
            window_ends_at,
        };
        assert_eq!(retry_after(at(1_000 + 600), 1_000, window), 600);
        assert_eq!(retry_after(at(1_000 + 3600), 1_000, window), 3600);
        // Opened by a parallel attempt whose clock read one second later.
        assert_eq!(retry_after(at(1_000 + 3601), 1_000, window), 3600);
        assert_eq!(retry_after(at(1_000), 1_000, window), 1);
        assert_eq!(retry_after(at(990), 1_000, window), 1);
    }
}
