use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::credential::TokenDigest;
use crate::domain::limits::within_grace;
use crate::domain::{AccessAuthorisation, AccountId, Device, Permissions, Timestamp};

/// What the cache holds: a verified credential, and whose it is.
pub trait Cached: Clone {
    /// The account it belongs to, if any: an account's change drops it.
    fn account(&self) -> Option<AccountId>;
    /// The digest of its current token, the one it replaced, and until
    /// when that one overlaps.
    fn digests(&self) -> (&TokenDigest, Option<&TokenDigest>, Option<Timestamp>);

    /// Whether `digest` is its current token, or the one it replaced while
    /// that still overlaps (in constant time, both compared).
    fn presented(&self, digest: &TokenDigest, now: Timestamp) -> bool {
        let (current, previous, until) = self.digests();
        current.matches(digest)
            || (previous.is_some_and(|previous| previous.matches(digest))
                && within_grace(until, now))
    }
}

/// What the hot path needs to decide on a request: the token digest, the
/// owning account's state at the time it was read, and the device itself so
/// the article's "load your own device resource" check needs no lookup.
#[derive(Clone, Debug)]
pub struct CachedCredential {
    pub digest: TokenDigest,
    /// The token "Change password" replaced, while it overlaps (until
    /// `device.previous_token_until`).
    pub previous_digest: Option<TokenDigest>,
    pub account_enabled: bool,
    pub permissions: Permissions,
    pub device: Arc<Device>,
    /// Who holds it, for forward auth's identity headers.
    pub holder: Arc<Holder>,
    /// Unix ms of the last use this node saw, or the stored one: idle
    /// expiry reads it without a lookup. Shared by every clone of the entry.
    pub last_seen: Arc<AtomicI64>,
}

impl Cached for CachedCredential {
    fn account(&self) -> Option<AccountId> {
        Some(self.device.account_id)
    }
    fn digests(&self) -> (&TokenDigest, Option<&TokenDigest>, Option<Timestamp>) {
        (
            &self.digest,
            self.previous_digest.as_ref(),
            self.device.previous_token_until,
        )
    }
}

/// An API access authorisation, verified: it belongs to no account, so only
/// its own changes drop it.
#[derive(Clone, Debug)]
pub struct CachedAccess {
    pub digest: TokenDigest,
    pub previous_digest: Option<TokenDigest>,
    pub access: Arc<AccessAuthorisation>,
    /// As [`CachedCredential::last_seen`].
    pub last_seen: Arc<AtomicI64>,
}

impl Cached for CachedAccess {
    fn account(&self) -> Option<AccountId> {
        None
    }
    fn digests(&self) -> (&TokenDigest, Option<&TokenDigest>, Option<Timestamp>) {
        (
            &self.digest,
            self.previous_digest.as_ref(),
            self.access.previous_token_until,
        )
    }
}

/// The account a credential belongs to, as forward auth names it.
#[derive(Debug)]
pub struct Holder {
    pub email: String,
    pub name: String,
}

/// What the cache knows about a credential id.
#[derive(Debug)]
pub enum Lookup<V = CachedCredential> {
    Known(V),
    /// Looked up recently and not found: no need to ask again.
    Unknown,
    Miss,
}

/// How long "no such device" is remembered. Creating the device anywhere
/// announces it, so this only bounds memory kept for ids never created.
const UNKNOWN_TTL: Duration = Duration::from_secs(300);

/// A bounded map from device id to its verified credential, plus a smaller
/// bounded set of ids known not to exist, so that neither unknown ids nor
/// wrong tokens can flush the credentials or cost a query each.
///
/// Every invalidation bumps a generation counter; a value read from the
/// database is only inserted if no invalidation happened while it was being
/// read, so a revocation racing a cache fill can never be undone by it.
///
/// While the change feed is lost, entries are served for at most
/// `max_staleness` and nothing new is cached; once it is back, everything
/// is dropped, since what changed meanwhile is unknown.
pub struct CredentialCache<V = CachedCredential> {
    maps: RwLock<Maps<V>>,
    generation: AtomicU64,
    capacity: usize,
    unknown_capacity: usize,
    feed_live: AtomicBool,
    /// While the feed is lost: until when (ms after `epoch`) entries may be served.
    serve_until: AtomicU64,
    epoch: Instant,
    max_staleness: Duration,
}

/// Keyed by device id with foldhash, seeded at random per process: several
/// times cheaper than the standard SipHash on every request's lookup, and
/// still not a hash an outsider can aim collisions at (only verified
/// credentials are added, and unknown ids under the per-address limit).
type HashMap<K, V> = foldhash::HashMap<K, V>;

struct Maps<V> {
    known: HashMap<String, V>,
    unknown: HashMap<String, Instant>,
}

impl<V> Default for Maps<V> {
    fn default() -> Self {
        Self {
            known: HashMap::default(),
            unknown: HashMap::default(),
        }
    }
}

/// Proof of the generation a database read started in.
#[derive(Clone, Copy, Debug)]
pub struct FillTicket(u64);

impl<V: Cached> CredentialCache<V> {
    pub fn new(capacity: usize, max_staleness: Duration) -> Self {
        let capacity = capacity.max(1);
        Self {
            maps: RwLock::new(Maps::default()),
            generation: AtomicU64::new(0),
            capacity,
            unknown_capacity: (capacity / 10).max(1000),
            feed_live: AtomicBool::new(true),
            serve_until: AtomicU64::new(0),
            epoch: Instant::now(),
            max_staleness,
        }
    }

    pub fn get(&self, device_id: &str) -> Lookup<V> {
        if !self.feed_live.load(Ordering::Acquire) && self.stale() {
            return Lookup::Miss;
        }
        let maps = self.read();
        if let Some(credential) = maps.known.get(device_id) {
            return Lookup::Known(credential.clone());
        }
        match maps.unknown.get(device_id) {
            Some(at) if at.elapsed() < UNKNOWN_TTL => Lookup::Unknown,
            _ => Lookup::Miss,
        }
    }

    /// Call before reading from the database; pass the ticket to [`Self::fill`].
    pub fn ticket(&self) -> FillTicket {
        FillTicket(self.generation.load(Ordering::Acquire))
    }

    pub fn fill(&self, ticket: FillTicket, device_id: &str, credential: V) {
        let mut maps = self.write();
        if !self.may_fill(ticket) {
            return;
        }
        if maps.known.len() >= self.capacity && !maps.known.contains_key(device_id) {
            // Any entry will do: the evicted one is simply read again next time.
            if let Some(victim) = maps.known.keys().next().cloned() {
                maps.known.remove(&victim);
            }
        }
        maps.unknown.remove(device_id);
        maps.known.insert(device_id.to_owned(), credential);
    }

    /// Remembers that the database has no such device.
    pub fn fill_unknown(&self, ticket: FillTicket, device_id: &str) {
        let mut maps = self.write();
        if !self.may_fill(ticket) {
            return;
        }
        if maps.unknown.len() >= self.unknown_capacity {
            maps.unknown.retain(|_, at| at.elapsed() < UNKNOWN_TTL);
            if maps.unknown.len() >= self.unknown_capacity {
                if let Some(victim) = maps.unknown.keys().next().cloned() {
                    maps.unknown.remove(&victim);
                }
            }
        }
        maps.unknown.insert(device_id.to_owned(), Instant::now());
    }

    pub fn invalidate_device(&self, device_id: &str) {
        let mut maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        maps.known.remove(device_id);
        maps.unknown.remove(device_id);
    }

    pub fn invalidate_account(&self, account_id: AccountId) {
        let mut maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        maps.known.retain(|_, c| c.account() != Some(account_id));
    }

    pub fn clear(&self) {
        let mut maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        maps.known.clear();
        maps.unknown.clear();
    }

    /// Changes can no longer be seen: serve what is cached for a bounded
    /// time, and cache nothing new.
    pub fn feed_lost(&self) {
        let _maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if self.feed_live.swap(false, Ordering::AcqRel) {
            let until = self.epoch.elapsed() + self.max_staleness;
            self.serve_until
                .store(until.as_millis() as u64, Ordering::Release);
        }
    }

    /// Changes are seen again; anything cached may have changed meanwhile.
    pub fn feed_restored(&self) {
        let mut maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        maps.known.clear();
        maps.unknown.clear();
        self.feed_live.store(true, Ordering::Release);
    }

    /// Changes are seen again and none were missed: what is cached stays.
    pub fn feed_caught_up(&self) {
        let _maps = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.feed_live.store(true, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.read().known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn may_fill(&self, ticket: FillTicket) -> bool {
        self.generation.load(Ordering::Acquire) == ticket.0
            && self.feed_live.load(Ordering::Acquire)
    }

    /// Past the staleness bound; drops everything the first time it says so.
    fn stale(&self) -> bool {
        let now = self.epoch.elapsed().as_millis() as u64;
        if now < self.serve_until.load(Ordering::Acquire) {
            return false;
        }
        if self.read().known.is_empty() {
            // Already dropped: no write lock on every request of an outage.
            return true;
        }
        let mut maps = self.write();
        if !self.feed_live.load(Ordering::Acquire) && !maps.known.is_empty() {
            tracing::warn!(
                dropped = maps.known.len(),
                "change feed still lost; no longer serving cached credentials"
            );
            maps.known.clear();
            maps.unknown.clear();
        }
        true
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps<V>> {
        // A panic while holding the lock cannot leave the maps half-updated in
        // a way that matters: every operation is a single insert or remove.
        self.maps.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps<V>> {
        self.maps.write().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credential(account: i64) -> CachedCredential {
        CachedCredential {
            digest: TokenDigest([account as u8; 32]),
            previous_digest: None,
            account_enabled: true,
            permissions: Permissions::default(),
            device: Arc::new(Device {
                id: crate::credential::DeviceId::generate(),
                account_id: AccountId(account),
                name: crate::domain::DeviceName::parse("test").unwrap(),
                device_type: "unknown".into(),
                created_at: crate::domain::Timestamp::now(),
                last_used: None,
                limits: Default::default(),
                token_issued_at: crate::domain::Timestamp::now(),
                previous_token_until: None,
            }),
            holder: Arc::new(Holder {
                email: "ann@example.com".into(),
                name: "Ann".into(),
            }),
            last_seen: Arc::new(AtomicI64::new(0)),
        }
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let cache: CredentialCache = CredentialCache::new(10, Duration::from_secs(60));
        let ticket = cache.ticket();
        cache.invalidate_device("100000001");
        cache.fill(ticket, "100000001", credential(1));
        assert!(matches!(cache.get("100000001"), Lookup::Miss));
        cache.fill(cache.ticket(), "100000001", credential(1));
        assert!(matches!(cache.get("100000001"), Lookup::Known(_)));
    }

    #[test]
    fn account_invalidation_drops_only_that_account() {
        let cache: CredentialCache = CredentialCache::new(10, Duration::from_secs(60));
        cache.fill(cache.ticket(), "100000001", credential(1));
        cache.fill(cache.ticket(), "100000002", credential(2));
        cache.invalidate_account(AccountId(1));
        assert!(matches!(cache.get("100000001"), Lookup::Miss));
        assert!(matches!(cache.get("100000002"), Lookup::Known(_)));
    }

    #[test]
    fn stays_within_capacity() {
        let cache: CredentialCache = CredentialCache::new(3, Duration::from_secs(60));
        for i in 0..10 {
            cache.fill(cache.ticket(), &format!("1000000{i:02}"), credential(i));
        }
        assert_eq!(cache.len(), 3);
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn unknown_ids_are_remembered_apart_from_credentials() {
        let cache: CredentialCache = CredentialCache::new(3, Duration::from_secs(60));
        cache.fill(cache.ticket(), "100000001", credential(1));
        for i in 0..5000 {
            cache.fill_unknown(cache.ticket(), &format!("9{i:011}"));
        }
        assert!(matches!(cache.get("100000001"), Lookup::Known(_)));
        assert!(matches!(cache.get("900000004999"), Lookup::Unknown));
        // A device created later under a remembered id is announced.
        cache.invalidate_device("900000004999");
        assert!(matches!(cache.get("900000004999"), Lookup::Miss));
    }

    #[test]
    fn a_lost_feed_serves_for_a_bounded_time_then_nothing() {
        let cache: CredentialCache = CredentialCache::new(10, Duration::from_millis(50));
        cache.fill(cache.ticket(), "100000001", credential(1));
        cache.feed_lost();
        assert!(matches!(cache.get("100000001"), Lookup::Known(_)));
        // Nothing new is cached while changes cannot be seen.
        cache.fill(cache.ticket(), "100000002", credential(2));
        assert!(matches!(cache.get("100000002"), Lookup::Miss));
        std::thread::sleep(Duration::from_millis(80));
        assert!(matches!(cache.get("100000001"), Lookup::Miss));
        cache.feed_restored();
        cache.fill(cache.ticket(), "100000002", credential(2));
        assert!(matches!(cache.get("100000002"), Lookup::Known(_)));
    }

    #[test]
    fn a_feed_that_caught_up_keeps_the_cache() {
        let cache: CredentialCache = CredentialCache::new(10, Duration::from_secs(60));
        cache.fill(cache.ticket(), "100000001", credential(1));
        cache.feed_lost();
        cache.feed_caught_up();
        assert!(matches!(cache.get("100000001"), Lookup::Known(_)));
        cache.fill(cache.ticket(), "100000002", credential(2));
        assert!(matches!(cache.get("100000002"), Lookup::Known(_)));
    }

    #[test]
    fn a_restored_feed_drops_what_was_served_meanwhile() {
        let cache: CredentialCache = CredentialCache::new(10, Duration::from_secs(60));
        cache.fill(cache.ticket(), "100000001", credential(1));
        cache.feed_lost();
        cache.feed_restored();
        assert!(matches!(cache.get("100000001"), Lookup::Miss));
    }
}
