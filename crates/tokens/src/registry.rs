//! What a verifier knows of the key registry: the public keys it has read, how long it
//! trusts them, and how often it may read the registry again.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;

use stores::PublicKey;

use crate::keys::decoding_key;

/// How many public keys a verifier remembers (keys are few: the current one and those
/// retired while tokens they signed may still be alive).
const MAX_KNOWN_KEYS: usize = 64;

/// A public key as a verifier keeps it.
pub(crate) struct Known {
    pub(crate) key: DecodingKey,
    /// When it stops verifying (a retired key), if known.
    pub(crate) expires_at: Option<i64>,
    /// When it was last read from the key source; `None` for the signer's own key.
    pub(crate) read_at: Option<Instant>,
}

/// How long a verifier trusts what it read of a key before reading it again, so that
/// a retired key stops verifying everywhere within this long of its expiry.
pub const KEY_RECHECK: Duration = Duration::from_secs(300);

/// How many reads of the key registry a verifier may make in a row for tokens under
/// key ids it does not know ([`RegistryReads`]).
pub const REGISTRY_READ_BURST: u32 = 3;

/// How often a verifier that has made its [`REGISTRY_READ_BURST`] reads may read the
/// key registry again: a flood of tokens under made-up key ids costs at most one read
/// this often, whatever its rate.
pub const REGISTRY_READ_EVERY: Duration = Duration::from_secs(5);

/// When a verifier may read the key registry: a token bucket of
/// [`REGISTRY_READ_BURST`] reads, one more every [`REGISTRY_READ_EVERY`]. The burst
/// lets a new key (a rotation) be learnt at once even just after a read; the rate
/// bounds what unknown key ids cost, since no cache of key ids can remember every
/// random one.
#[derive(Debug)]
pub struct RegistryReads {
    left: u32,
    /// When the next read is earned.
    next: Instant,
}

impl RegistryReads {
    /// A full bucket at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            left: REGISTRY_READ_BURST,
            next: now + REGISTRY_READ_EVERY,
        }
    }

    /// Whether a read may be made at `now`; if so, it is counted. A full bucket starts
    /// earning its next read from the read that takes from it.
    pub fn take(&mut self, now: Instant) -> bool {
        while self.left < REGISTRY_READ_BURST && self.next <= now {
            self.left += 1;
            self.next += REGISTRY_READ_EVERY;
        }
        if self.left == 0 {
            return false;
        }
        if self.left == REGISTRY_READ_BURST {
            self.next = now + REGISTRY_READ_EVERY;
        }
        self.left -= 1;
        true
    }
}

/// `known` after a read of the whole `registry` at `read_at`: every key read before is
/// forgotten (the signer's own key stays) and the registry's usable keys, at most
/// [`MAX_KNOWN_KEYS`], take their place.
pub(crate) fn learn(
    known: &RwLock<HashMap<String, Known>>,
    registry: &[PublicKey],
    read_at: Instant,
) {
    let mut known = known.write().unwrap_or_else(|p| p.into_inner());
    known.retain(|_, k| k.read_at.is_none());
    for key in registry.iter().take(MAX_KNOWN_KEYS) {
        if let Some(decoding) = decoding_key(key) {
            let entry = Known {
                key: decoding,
                expires_at: key.expires_at,
                read_at: Some(read_at),
            };
            known.insert(key.kid.clone(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_reads_come_in_a_small_burst_then_one_every_few_seconds() {
        let start = Instant::now();
        let mut reads = RegistryReads::new(start);
        let burst = REGISTRY_READ_BURST as usize;
        let taken = (0..100).filter(|_| reads.take(start)).count();
        assert_eq!(taken, burst, "a burst, then nothing at the same instant");
        let almost = start + REGISTRY_READ_EVERY - Duration::from_millis(1);
        assert!(!reads.take(almost));
        let later = start + REGISTRY_READ_EVERY;
        assert!(reads.take(later), "one more read earned");
        assert!(!reads.take(later));
        let much_later = start + 100 * REGISTRY_READ_EVERY;
        let taken = (0..100).filter(|_| reads.take(much_later)).count();
        assert_eq!(taken, burst, "never more than the burst saved up");
    }
}
