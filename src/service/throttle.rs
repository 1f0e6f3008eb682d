//! Token buckets that slow down main-password guessing, per account and per
//! client address. A check reserves a token before any hashing happens and
//! gives it back when the password was right, so only failures count and
//! concurrent guesses cannot all slip through before the first one fails.
//!
//! The buckets live in the database, so guesses spread over several nodes
//! (or repeated after a restart) count as much as guesses on one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::Timestamp;
use crate::store::{Buckets, Store, StoreError};

/// How fast failures refill, for one kind of key.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Failures allowed in a burst.
    pub burst: u32,
    /// One more failure allowed every this long.
    pub refill_every: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct ThrottleConfig {
    pub per_account: Rate,
    pub per_address: Rate,
    /// Device-credential lookups that reached the database and found
    /// nothing, per address (or IPv6 /64), per node.
    pub lookup_failures: Rate,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            // 5 wrong passwords, then one every 20 s: 180 an hour per account.
            per_account: Rate {
                burst: 5,
                refill_every: Duration::from_secs(20),
            },
            // 20 wrong passwords, then one every 2 s, per address (or IPv6 /64).
            per_address: Rate {
                burst: 20,
                refill_every: Duration::from_secs(2),
            },
            // 1,000 failed lookups, then 100 a second: far more than any
            // honest client, far less than the database can answer.
            lookup_failures: Rate {
                burst: 1000,
                refill_every: Duration::from_millis(10),
            },
        }
    }
}

/// A reserved attempt; hand it back with [`Throttle::release`] when it should
/// not count (the password was right, or the server failed).
#[must_use]
pub struct Reservation {
    keys: Vec<String>,
}

/// Password-guessing throttle over buckets shared through the store.
pub struct Throttle {
    config: ThrottleConfig,
    store: Arc<dyn Store>,
    /// Keys this node found empty, and until when. Buckets only refill with
    /// time, so until then the database would say no again: a guessing storm
    /// is refused from memory. (A right password on another node gives one
    /// attempt back early; this node then waits a little longer than needed.)
    empty_until: Mutex<HashMap<String, Instant>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig, store: Arc<dyn Store>) -> Self {
        Self {
            config,
            store,
            empty_until: Mutex::new(HashMap::new()),
        }
    }

    fn known_empty(&self, keys: &[String]) -> Option<Duration> {
        let empty = self.empty_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        keys.iter()
            .filter_map(|key| empty.get(key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    fn remember_empty(&self, short: Vec<(String, Duration)>) {
        let mut empty = self.empty_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if empty.len() > PRUNE_ABOVE {
            empty.retain(|_, until| *until > now);
        }
        for (key, wait) in short {
            empty.insert(key, now + wait);
        }
    }

    /// Takes one attempt from both the account's and the address's bucket,
    /// or says how long to wait (`Ok(Err(wait))`).
    pub async fn reserve(
        &self,
        account: &str,
        address: IpAddr,
    ) -> Result<Result<Reservation, Duration>, StoreError> {
        let keys = vec![
            format!("account:{account}"),
            format!("address:{}", network_of(address)),
        ];
        if let Some(wait) = self.known_empty(&keys) {
            return Ok(Err(round_up_to_second(wait)));
        }
        let rates = [self.config.per_account, self.config.per_address];
        let now = Timestamp::now().millis();
        let mut short = Vec::new();
        let mut update = |found: Buckets| {
            short.clear();
            let mut changed = Buckets::new();
            for (key, rate) in keys.iter().zip(rates) {
                let tokens = refilled(found.get(key).copied(), rate, now);
                if tokens < 1.0 {
                    short.push((key.clone(), rate.refill_every.mul_f64(1.0 - tokens)));
                }
                changed.insert(key.clone(), (tokens - 1.0, now));
            }
            short.is_empty().then_some(changed)
        };
        if self.store.update_buckets(&keys, &mut update).await? {
            return Ok(Ok(Reservation { keys }));
        }
        let wait = short
            .iter()
            .map(|(_, wait)| *wait)
            .max()
            .unwrap_or_default();
        self.remember_empty(short);
        Ok(Err(round_up_to_second(wait)))
    }

    /// The attempt does not count after all. Best effort: if the database
    /// cannot take it back, the person merely lost one attempt.
    pub async fn release(&self, reservation: Reservation) {
        let rates = [self.config.per_account, self.config.per_address];
        let now = Timestamp::now().millis();
        let keys = &reservation.keys;
        let mut update = |found: Buckets| {
            let mut changed = Buckets::new();
            for (key, rate) in keys.iter().zip(rates) {
                let tokens = refilled(found.get(key).copied(), rate, now);
                changed.insert(
                    key.clone(),
                    ((tokens + 1.0).min(f64::from(rate.burst)), now),
                );
            }
            Some(changed)
        };
        if let Err(e) = self.store.update_buckets(keys, &mut update).await {
            tracing::warn!(error = %e, "cannot give back a throttle attempt");
        }
    }

    /// Forgets buckets that have refilled completely; they mean nothing.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let full_after = [self.config.per_account, self.config.per_address]
            .iter()
            .map(|rate| rate.refill_every * rate.burst)
            .max()
            .unwrap_or_default();
        let cutoff = Timestamp::now().millis() - full_after.as_millis() as i64 - 1000;
        self.store.prune_buckets(cutoff).await
    }
}

/// Tokens in a bucket counted at `updated` (Unix ms), as of `now`. Clocks of
/// different nodes may disagree a little; a bucket never refills backwards.
fn refilled(bucket: Option<(f64, i64)>, rate: Rate, now: i64) -> f64 {
    let burst = f64::from(rate.burst);
    match bucket {
        None => burst,
        Some((tokens, updated)) => {
            let elapsed = Duration::from_millis(now.saturating_sub(updated).max(0) as u64);
            let gained = elapsed.as_secs_f64() / rate.refill_every.as_secs_f64().max(f64::EPSILON);
            (tokens + gained).min(burst)
        }
    }
}

/// An in-memory, per-node limit on failed device-credential lookups that
/// reached the database, per client address. Such failures are never
/// guesses worth sharing between nodes (tokens have 256 bits); the limit only
/// stops one client from making every request cost a query.
pub struct LookupLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// Above this many tracked addresses, full buckets are dropped.
const PRUNE_ABOVE: usize = 100_000;

impl LookupLimiter {
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this address may make another lookup now.
    pub fn allows(&self, address: Option<IpAddr>) -> bool {
        let Some(address) = address else { return true };
        let buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        buckets
            .get(&network_of(address))
            .is_none_or(|bucket| self.tokens(*bucket, now) >= 1.0)
    }

    /// How long until one more lookup is allowed, once exhausted.
    pub fn retry_after(&self) -> Duration {
        round_up_to_second(self.rate.refill_every)
    }

    /// Counts a lookup that found nothing.
    pub fn record_failure(&self, address: Option<IpAddr>) {
        let Some(address) = address else { return };
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if buckets.len() > PRUNE_ABOVE {
            let burst = f64::from(self.rate.burst);
            buckets.retain(|_, bucket| self.tokens(*bucket, now) < burst);
        }
        let network = network_of(address);
        let tokens = buckets
            .get(&network)
            .map_or(f64::from(self.rate.burst), |bucket| {
                self.tokens(*bucket, now)
            });
        buckets.insert(network, ((tokens - 1.0).max(0.0), now));
    }

    fn tokens(&self, (tokens, updated): (f64, Instant), now: Instant) -> f64 {
        let gained = now.duration_since(updated).as_secs_f64()
            / self.rate.refill_every.as_secs_f64().max(f64::EPSILON);
        (tokens + gained).min(f64::from(self.rate.burst))
    }
}

/// IPv6 clients usually control a whole /64, so that is the unit throttled.
fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

fn round_up_to_second(wait: Duration) -> Duration {
    Duration::from_secs(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(burst: u32, secs: u64) -> Rate {
        Rate {
            burst,
            refill_every: Duration::from_secs(secs),
        }
    }

    async fn strict() -> (Throttle, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url, &Default::default()).await.unwrap();
        let throttle = Throttle::new(
            ThrottleConfig {
                per_account: rate(2, 60),
                per_address: rate(3, 60),
                lookup_failures: rate(1, 1),
            },
            store,
        );
        (throttle, dir)
    }

    #[tokio::test]
    async fn failures_exhaust_the_account_bucket() {
        let (throttle, _dir) = strict().await;
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _ = throttle.reserve("a@x.org", ip).await.unwrap().unwrap();
        let _ = throttle.reserve("a@x.org", ip).await.unwrap().unwrap();
        let wait = throttle
            .reserve("a@x.org", ip)
            .await
            .unwrap()
            .err()
            .unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another account from the same address still has one attempt left.
        let _ = throttle.reserve("b@x.org", ip).await.unwrap().unwrap();
        assert!(throttle.reserve("c@x.org", ip).await.unwrap().is_err());
    }

    #[tokio::test]
    async fn an_empty_bucket_is_refused_from_memory() {
        let (throttle, _dir) = strict().await;
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            let _ = throttle.reserve("a@x.org", ip).await.unwrap().unwrap();
        }
        assert!(throttle.reserve("a@x.org", ip).await.unwrap().is_err());
        // With the database gone, the storm is still refused, not failed.
        throttle.store.close().await;
        let wait = throttle
            .reserve("a@x.org", ip)
            .await
            .unwrap()
            .err()
            .unwrap();
        assert!(wait > Duration::from_secs(50));
    }

    #[tokio::test]
    async fn successes_do_not_count() {
        let (throttle, _dir) = strict().await;
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            let reservation = throttle.reserve("a@x.org", ip).await.unwrap().unwrap();
            throttle.release(reservation).await;
        }
        assert_eq!(throttle.prune().await.unwrap(), 0, "recent buckets stay");
    }

    #[tokio::test]
    async fn ipv6_is_throttled_per_64() {
        let (throttle, _dir) = strict().await;
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
            let _ = throttle
                .reserve(host, host.parse().unwrap())
                .await
                .unwrap()
                .unwrap();
        }
        let other_host: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(throttle
            .reserve("z@x.org", other_host)
            .await
            .unwrap()
            .is_err());
        let other_net: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert!(throttle
            .reserve("z@x.org", other_net)
            .await
            .unwrap()
            .is_ok());
    }

    #[test]
    fn buckets_refill_and_never_run_backwards() {
        let r = rate(5, 10);
        assert_eq!(refilled(None, r, 0), 5.0);
        assert_eq!(refilled(Some((0.0, 0)), r, 10_000), 1.0);
        assert_eq!(refilled(Some((0.0, 0)), r, 1_000_000), 5.0);
        assert_eq!(refilled(Some((2.0, 5_000)), r, 0), 2.0, "clock skew");
    }

    #[test]
    fn lookup_failures_are_limited_per_address() {
        let limiter = LookupLimiter::new(rate(3, 3600));
        let ip: Option<IpAddr> = "198.51.100.7".parse().ok();
        for _ in 0..3 {
            assert!(limiter.allows(ip));
            limiter.record_failure(ip);
        }
        assert!(!limiter.allows(ip));
        assert!(limiter.allows("198.51.100.8".parse().ok()));
        assert!(limiter.allows(None), "no address, no limit");
    }
}
