use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::TokenDigest;
use crate::domain::{AccountId, Device, Permissions};

/// What the hot path needs to decide on a request: the token digest, the
/// owning account's state at the time it was read, and the device itself so
/// the article's "load your own device resource" check needs no lookup.
#[derive(Clone, Debug)]
pub struct CachedCredential {
    pub digest: TokenDigest,
    pub account_enabled: bool,
    pub permissions: Permissions,
    pub device: Arc<Device>,
}

/// A bounded map from device id to its verified credential.
///
/// Every invalidation bumps a generation counter; a value read from the
/// database is only inserted if no invalidation happened while it was being
/// read, so a revocation racing a cache fill can never be undone by it.
pub struct CredentialCache {
    entries: RwLock<HashMap<String, CachedCredential>>,
    generation: AtomicU64,
    capacity: usize,
}

/// Proof of the generation a database read started in.
#[derive(Clone, Copy, Debug)]
pub struct FillTicket(u64);

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            capacity: capacity.max(1),
        }
    }

    pub fn get(&self, device_id: &str) -> Option<CachedCredential> {
        self.read().get(device_id).cloned()
    }

    /// Call before reading from the database; pass the ticket to [`Self::fill`].
    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.generation.load(Ordering::Acquire))
    }

    pub fn fill(&self, ticket: FillTicket, device_id: &str, credential: CachedCredential) {
        let mut entries = self.write();
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= self.capacity && !entries.contains_key(device_id) {
            // Any entry will do: the evicted one is simply read again next time.
            if let Some(victim) = entries.keys().next().cloned() {
                entries.remove(&victim);
            }
        }
        entries.insert(device_id.to_owned(), credential);
    }

    pub fn invalidate_device(&self, device_id: &str) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(device_id);
    }

    pub fn invalidate_account(&self, account_id: AccountId) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|_, c| c.device.account_id != account_id);
    }

    pub fn clear(&self) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, CachedCredential>> {
        // A panic while holding the lock cannot leave the map half-updated in
        // a way that matters: every operation is a single insert or remove.
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, CachedCredential>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(account: i64) -> CachedCredential {
        CachedCredential {
            digest: TokenDigest([account as u8; 32]),
            account_enabled: true,
            permissions: Permissions::default(),
            device: Arc::new(Device {
                id: crate::credential::DeviceId::generate(),
                account_id: AccountId(account),
                name: crate::domain::DeviceName::parse("test").unwrap(),
                device_type: "unknown".into(),
                created_at: crate::domain::Timestamp::now(),
                last_used: None,
            }),
        }
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache = CredentialCache::new(10);
        let ticket = cache.ticket();
        cache.invalidate_device("100000001");
        cache.fill(ticket, "100000001", credential(1));
        assert!(cache.get("100000001").is_none());
        cache.fill(cache.ticket(), "100000001", credential(1));
        assert!(cache.get("100000001").is_some());
    }

    #[test]
    fn account_invalidation_drops_only_that_account() {
        let cache = CredentialCache::new(10);
        cache.fill(cache.ticket(), "100000001", credential(1));
        cache.fill(cache.ticket(), "100000002", credential(2));
        cache.invalidate_account(AccountId(1));
        assert!(cache.get("100000001").is_none());
        assert!(cache.get("100000002").is_some());
    }

    #[test]
    fn stays_within_capacity() {
        let cache = CredentialCache::new(3);
        for i in 0..10 {
            cache.fill(cache.ticket(), &format!("1000000{i:02}"), credential(i));
        }
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert!(cache.is_empty());
    }
}
