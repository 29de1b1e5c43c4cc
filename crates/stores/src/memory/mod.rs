//! In-memory stores: the embedded default for `local` and tests.
//!
//! As the DynamoDB stores are views of three tables, these are views of one
//! [`MemoryTables`]: the accounts, the profiles and the security state (sessions,
//! refresh tokens, users' states), each under a lock of its own. A store reads and
//! writes its own tables through their methods; a step that spans tables (a login's
//! account check, a guarded profile write, a password change, an account deletion)
//! takes the locks it needs in one order — accounts, then profiles, then security — so
//! that it is one atomic step, as its DynamoDB transaction is. Login attempts and public
//! keys are held by stores of their own, which no step shares.

mod accounts;
mod attempts;
mod cross_table;
mod keys;
mod mail_tokens;
mod profiles;
mod security;
mod sessions;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use uuid::Uuid;

use crate::Profile;

pub use accounts::MemoryAccountStore;
pub use attempts::MemoryLoginAttemptStore;
pub use cross_table::MemoryCrossTableWrites;
pub use keys::MemoryKeyStore;
pub use mail_tokens::MemoryMailTokenStore;
pub use profiles::MemoryProfileStore;
pub use sessions::MemorySessionStore;

use accounts::Accounts;
use security::Security;

/// The tables the in-memory stores are views of (see the module's documentation for
/// the order in which a step locks them).
#[derive(Default)]
pub struct MemoryTables {
    accounts: Mutex<Accounts>,
    profiles: RwLock<BTreeMap<Uuid, Profile>>,
    security: Mutex<Security>,
}

impl MemoryTables {
    /// Fresh, empty tables to make stores over.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn accounts(&self) -> MutexGuard<'_, Accounts> {
        lock(&self.accounts)
    }

    fn profiles_read(&self) -> RwLockReadGuard<'_, BTreeMap<Uuid, Profile>> {
        self.profiles.read().unwrap_or_else(|p| p.into_inner())
    }

    fn profiles_write(&self) -> RwLockWriteGuard<'_, BTreeMap<Uuid, Profile>> {
        self.profiles.write().unwrap_or_else(|p| p.into_inner())
    }

    fn security(&self) -> MutexGuard<'_, Security> {
        lock(&self.security)
    }
}

/// Takes `m`'s lock, also after a holder panicked (the store keeps serving).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts writes so that expired entries are swept every so many of them.
#[derive(Default)]
struct Sweeps {
    writes: u64,
}

impl Sweeps {
    /// How many writes pass between sweeps of expired entries.
    const EVERY: u64 = 1024;

    /// Counts one write; whether it is time to sweep.
    fn wrote(&mut self) -> bool {
        self.writes += 1;
        self.writes.is_multiple_of(Self::EVERY)
    }
}
