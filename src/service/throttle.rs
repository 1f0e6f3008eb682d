//! Slowing down main-password guessing without letting anyone lock an
//! account's owner out (OWASP's "device cookies", NIST SP 800-63B §5.2.2).
//!
//! A password check first reserves one attempt from each budget that
//! applies, and gives it back when the password was right, so only
//! failures count and concurrent guesses cannot all slip through before
//! the first one fails. The budgets:
//!
//! * per account and client network (the address, or an IPv6 /64): one
//!   attacker's guesses at one account;
//! * per client network: one attacker spraying many accounts;
//! * per account, across every network: consecutive failures, at most
//!   [`ThrottleConfig::consecutive_failures`], after which untrusted clients
//!   are stopped for that account until a success from a trusted browser or
//!   an administrator clears it — distributed guessing has a hard cap;
//! * per trusted browser and account: a browser that signed in to the
//!   account before (it holds a signed cookie) is judged by this budget
//!   alone, so an attacker who spends all the others cannot keep the owner
//!   out.
//!
//! The budgets live in the database, so guesses spread over several nodes
//! (or repeated after a restart) count as much as guesses on one. Attempts
//! that find a budget spent only by attempts still in flight on this node
//! wait for those to finish instead of being refused: right passwords sent
//! in parallel all get through.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::credential::TrustedEntry;
use crate::domain::Timestamp;
use crate::store::{BucketWrites, Buckets, Store, StoreError};

/// How fast failures refill, for one kind of budget.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    /// Failures allowed in a burst.
    pub burst: u32,
    /// One more failure allowed every this long.
    pub refill_every: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct ThrottleConfig {
    pub per_account_and_network: Rate,
    pub per_network: Rate,
    pub per_trusted_browser: Rate,
    /// Wrong second-factor codes (TOTP or recovery) for one account, from
    /// anywhere: the code is the only secret left once the password is
    /// known, so guesses at it are counted per account across every node.
    pub per_account_second_factor: Rate,
    /// Consecutive failures for one account from untrusted clients before
    /// they are stopped.
    pub consecutive_failures: u32,
    /// How long an attempt waits for attempts in flight to settle.
    pub max_wait: Duration,
    /// Device-credential lookups that reached the database and found
    /// nothing, per address (or IPv6 /64), per node.
    pub lookup_failures: Rate,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            // 10 wrong passwords, then one every 30 s: 120 an hour for one
            // attacker at one account.
            per_account_and_network: Rate {
                burst: 10,
                refill_every: Duration::from_secs(30),
            },
            // 30 wrong passwords, then one every 2 s, over all accounts.
            per_network: Rate {
                burst: 30,
                refill_every: Duration::from_secs(2),
            },
            // The owner's own browser: as patient as with one attacker.
            per_trusted_browser: Rate {
                burst: 10,
                refill_every: Duration::from_secs(30),
            },
            // 10 wrong codes, then one a minute: a 6-digit code (three
            // valid at a time) takes years of guessing on average.
            per_account_second_factor: Rate {
                burst: 10,
                refill_every: Duration::from_secs(60),
            },
            consecutive_failures: 100,
            max_wait: Duration::from_secs(15),
            // 1,000 failed lookups, then 100 a second: far more than any
            // honest client, far less than the database can answer.
            lookup_failures: Rate {
                burst: 1000,
                refill_every: Duration::from_millis(10),
            },
        }
    }
}

/// Where an attempt comes from, as far as the throttle cares.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Anything without a trusted-browser cookie for the account.
    Network(IpAddr),
    Trusted(&'a TrustedEntry),
    /// A second-factor code for the account, from anywhere.
    SecondFactor,
}

/// Why an attempt may not be made now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A budget is spent; it refills by then.
    Wait(Duration),
    /// The account's consecutive-failure cap is reached: only trusted
    /// browsers may try until it is cleared.
    Stopped,
}

/// The key prefix of the consecutive-failure budgets, which never refill.
const FAILURES: &str = "failures ";

fn failures_key(account: &str) -> String {
    format!("{FAILURES}{account}")
}

fn pair_prefix(account: &str) -> String {
    format!("pair {account} ")
}

#[derive(Clone, Copy, Debug)]
enum Budget {
    Refilling(Rate),
    /// Counts down to zero; only a success or an administrator resets it.
    Cap(u32),
}

impl Budget {
    fn full(self) -> f64 {
        match self {
            Budget::Refilling(rate) => f64::from(rate.burst),
            Budget::Cap(cap) => f64::from(cap),
        }
    }

    /// Tokens in a bucket counted at `updated` (Unix ms), as of `now`.
    /// Clocks of different nodes may disagree a little; a bucket never
    /// refills backwards.
    fn tokens(self, bucket: Option<(f64, i64)>, now: i64) -> f64 {
        let Some((stored, updated)) = bucket else {
            return self.full();
        };
        match self {
            // A cap's bucket holds the failures so far, which mean the same
            // whatever cap a node (or the command line) is configured with.
            Budget::Cap(cap) => f64::from(cap) - stored,
            Budget::Refilling(rate) => {
                let elapsed = Duration::from_millis(now.saturating_sub(updated).max(0) as u64);
                let gained =
                    elapsed.as_secs_f64() / rate.refill_every.as_secs_f64().max(f64::EPSILON);
                (stored + gained).min(self.full())
            }
        }
    }

    /// What the bucket stores with `tokens` left, counted `now`.
    fn stored(self, tokens: f64, now: i64) -> (f64, i64) {
        match self {
            Budget::Refilling(_) => (tokens, now),
            Budget::Cap(cap) => ((f64::from(cap) - tokens).max(0.0), now),
        }
    }

    /// How long until one more attempt, with `tokens` left.
    fn wait(self, tokens: f64) -> Option<Duration> {
        match self {
            Budget::Refilling(rate) => Some(rate.refill_every.mul_f64(1.0 - tokens)),
            Budget::Cap(_) => None,
        }
    }
}

/// Attempts holding reserved tokens on this node, per key.
#[derive(Default)]
struct InFlight {
    /// Key → (attempts holding a token, attempts asking the database now).
    counts: Mutex<HashMap<String, (u32, u32)>>,
    /// Told when a held token may have come back.
    settled: Notify,
}

impl InFlight {
    /// Applies `change` to each key's counts; keys nobody holds or asks
    /// about any more are forgotten.
    fn change(&self, keys: &[(String, Budget)], change: impl Fn(&mut (u32, u32))) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        for (key, _) in keys {
            let entry = counts.entry(key.clone()).or_default();
            change(entry);
            if *entry == (0, 0) {
                counts.remove(key);
            }
        }
    }

    /// Whether some other attempt on this node may yet give `key` a token back.
    fn busy(&self, key: &str) -> bool {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .get(key)
            .is_some_and(|(held, asking)| held + asking > 0)
    }
}

/// A reserved attempt. Dropping it means the attempt failed and counts;
/// [`Throttle::succeeded`] or [`Throttle::give_back`] say otherwise.
#[must_use]
pub struct Reservation {
    account: String,
    keys: Vec<(String, Budget)>,
    in_flight: Arc<InFlight>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.in_flight.change(&self.keys, |(held, _)| *held -= 1);
        self.in_flight.settled.notify_waiters();
    }
}

/// Password-guessing throttle over buckets shared through the store.
pub struct Throttle {
    config: ThrottleConfig,
    store: Arc<dyn Store>,
    in_flight: Arc<InFlight>,
    /// Refilling keys this node found empty, and until when. Buckets only
    /// refill with time, so until then the database would say no again: a
    /// guessing storm is refused from memory. (A right password on another
    /// node gives one attempt back early; this node then waits a little
    /// longer than needed.)
    empty_until: Mutex<HashMap<String, Instant>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig, store: Arc<dyn Store>) -> Self {
        Self {
            config,
            store,
            in_flight: Arc::default(),
            empty_until: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    fn budgets(&self, account: &str, source: Source<'_>) -> Vec<(String, Budget)> {
        match source {
            Source::SecondFactor => vec![(
                format!("second-factor {account}"),
                Budget::Refilling(self.config.per_account_second_factor),
            )],
            Source::Trusted(entry) => vec![(
                format!("browser {}", entry.bucket()),
                Budget::Refilling(self.config.per_trusted_browser),
            )],
            Source::Network(address) => {
                let network = network_of(address);
                vec![
                    (
                        format!("{}{network}", pair_prefix(account)),
                        Budget::Refilling(self.config.per_account_and_network),
                    ),
                    (
                        format!("network {network}"),
                        Budget::Refilling(self.config.per_network),
                    ),
                    (
                        failures_key(account),
                        Budget::Cap(self.config.consecutive_failures),
                    ),
                ]
            }
        }
    }

    fn known_empty(&self, keys: &[(String, Budget)]) -> Option<Duration> {
        let empty = self.empty_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        keys.iter()
            .filter_map(|(key, _)| empty.get(key))
            .filter(|until| **until > now)
            .map(|until| *until - now)
            .max()
    }

    fn remember_empty(&self, short: &[(String, Duration)]) {
        let mut empty = self.empty_until.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if empty.len() > PRUNE_ABOVE {
            empty.retain(|_, until| *until > now);
        }
        for (key, wait) in short {
            empty.insert(key.clone(), now + *wait);
        }
    }

    /// Takes one attempt from every budget that applies, or says why not.
    /// Waits (up to [`ThrottleConfig::max_wait`]) while the only thing in
    /// the way is other attempts in flight on this node.
    pub async fn reserve(
        &self,
        account: &str,
        source: Source<'_>,
    ) -> Result<Result<Reservation, Refused>, StoreError> {
        let keys = self.budgets(account, source);
        let deadline = tokio::time::Instant::now() + self.config.max_wait;
        loop {
            if let Some(wait) = self.known_empty(&keys) {
                return Ok(Err(Refused::Wait(round_up_to_second(wait))));
            }
            // Registered before asking, so a token given back meanwhile
            // is not missed.
            let settled = self.in_flight.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            self.in_flight.change(&keys, |(_, asking)| *asking += 1);
            let taken = self.take(&keys).await;
            let reserved = matches!(taken, Ok(None));
            self.in_flight.change(&keys, |(held, asking)| {
                *asking -= 1;
                *held += u32::from(reserved);
            });
            let short = match taken {
                Ok(None) => {
                    return Ok(Ok(Reservation {
                        account: account.to_owned(),
                        keys,
                        in_flight: self.in_flight.clone(),
                    }))
                }
                Ok(Some(short)) => short,
                Err(e) => {
                    self.in_flight.settled.notify_waiters();
                    return Err(e);
                }
            };
            let in_flight_elsewhere = short.iter().all(|(key, _)| self.in_flight.busy(key));
            if in_flight_elsewhere && tokio::time::Instant::now() < deadline {
                let _ = tokio::time::timeout_at(deadline, settled).await;
                continue;
            }
            // Nobody here waits on these any more.
            self.in_flight.settled.notify_waiters();
            let waits: Vec<(String, Duration)> = short
                .iter()
                .filter_map(|(key, wait)| Some((key.clone(), (*wait)?)))
                .collect();
            if waits.len() < short.len() {
                return Ok(Err(Refused::Stopped));
            }
            self.remember_empty(&waits);
            let wait = waits
                .iter()
                .map(|(_, wait)| *wait)
                .max()
                .unwrap_or_default();
            return Ok(Err(Refused::Wait(round_up_to_second(wait))));
        }
    }

    /// Takes a token from each budget in one atomic update; or, if any is
    /// short, changes nothing and returns the short ones with how long
    /// each needs (`None`: it does not refill).
    async fn take(
        &self,
        keys: &[(String, Budget)],
    ) -> Result<Option<Vec<(String, Option<Duration>)>>, StoreError> {
        let names: Vec<String> = keys.iter().map(|(key, _)| key.clone()).collect();
        let now = Timestamp::now().millis();
        let mut short = Vec::new();
        let mut update = |found: Buckets| {
            short.clear();
            let mut changed = BucketWrites::new();
            for (key, budget) in keys {
                let tokens = budget.tokens(found.get(key).copied(), now);
                if tokens < 1.0 {
                    short.push((key.clone(), budget.wait(tokens)));
                }
                changed.insert(key.clone(), Some(budget.stored(tokens - 1.0, now)));
            }
            short.is_empty().then_some(changed)
        };
        let wrote = self.store.update_buckets(&names, &mut update).await?;
        Ok((!wrote).then_some(short))
    }

    /// The password was right: the attempt does not count, and the
    /// account's consecutive failures start again from zero. Best effort:
    /// if the database cannot take it back, the person merely lost one
    /// attempt.
    pub async fn succeeded(&self, reservation: Reservation) {
        self.settle(reservation, true).await
    }

    /// The attempt does not count after all (the server failed).
    pub async fn give_back(&self, reservation: Reservation) {
        self.settle(reservation, false).await
    }

    async fn settle(&self, reservation: Reservation, reset_failures: bool) {
        let now = Timestamp::now().millis();
        let failures = failures_key(&reservation.account);
        let mut keys = reservation.keys.clone();
        if reset_failures && !keys.iter().any(|(key, _)| *key == failures) {
            keys.push((
                failures.clone(),
                Budget::Cap(self.config.consecutive_failures),
            ));
        }
        let names: Vec<String> = keys.iter().map(|(key, _)| key.clone()).collect();
        let mut update = |found: Buckets| {
            let mut changed = BucketWrites::new();
            for (key, budget) in &keys {
                let bucket = match budget {
                    Budget::Cap(_) if reset_failures => None,
                    _ if !reservation.keys.iter().any(|(held, _)| held == key) => continue,
                    _ => {
                        let tokens = budget.tokens(found.get(key).copied(), now);
                        Some(budget.stored((tokens + 1.0).min(budget.full()), now))
                    }
                };
                changed.insert(key.clone(), bucket);
            }
            Some(changed)
        };
        if let Err(e) = self.store.update_buckets(&names, &mut update).await {
            tracing::warn!(error = %e, "cannot give back a throttle attempt");
        }
        drop(reservation);
    }

    /// Consecutive failed attempts at the account from untrusted clients.
    pub async fn consecutive_failures(&self, account: &str) -> Result<u32, StoreError> {
        let key = failures_key(account);
        let found = self.store.buckets(std::slice::from_ref(&key)).await?;
        Ok(found
            .get(&key)
            .map_or(0, |(failures, _)| failures.round() as u32))
    }

    /// Forgets the account's failures (an administrator's decision): its
    /// consecutive-failure cap and every network's budget for it.
    pub async fn clear(&self, account: &str) -> Result<(), StoreError> {
        let key = failures_key(account);
        let mut update = |_: Buckets| Some(BucketWrites::from([(key.clone(), None)]));
        self.store
            .update_buckets(std::slice::from_ref(&key), &mut update)
            .await?;
        self.store
            .delete_buckets_with_prefix(&pair_prefix(account))
            .await?;
        let mut empty = self.empty_until.lock().unwrap_or_else(|e| e.into_inner());
        empty.retain(|key, _| !key.starts_with(&pair_prefix(account)));
        Ok(())
    }

    /// Forgets buckets that have refilled completely; they mean nothing.
    pub async fn prune(&self) -> Result<u64, StoreError> {
        let c = &self.config;
        let full_after = [
            c.per_account_and_network,
            c.per_network,
            c.per_trusted_browser,
            c.per_account_second_factor,
        ]
        .iter()
        .map(|rate| rate.refill_every * rate.burst)
        .max()
        .unwrap_or_default();
        let cutoff = Timestamp::now().millis() - full_after.as_millis() as i64 - 1000;
        self.store.prune_buckets(cutoff, FAILURES).await
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
    use crate::credential::{ServerKey, TrustedBrowsers};

    fn rate(burst: u32, secs: u64) -> Rate {
        Rate {
            burst,
            refill_every: Duration::from_secs(secs),
        }
    }

    fn config() -> ThrottleConfig {
        ThrottleConfig {
            per_account_and_network: rate(2, 60),
            per_network: rate(3, 60),
            per_trusted_browser: rate(2, 60),
            per_account_second_factor: rate(2, 60),
            consecutive_failures: 4,
            max_wait: Duration::from_secs(5),
            lookup_failures: rate(1, 1),
        }
    }

    async fn throttle(config: ThrottleConfig) -> (Throttle, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = crate::store::open(&url, &Default::default()).await.unwrap();
        (Throttle::new(config, store), dir)
    }

    fn at(address: &str) -> Source<'static> {
        Source::Network(address.parse().unwrap())
    }

    async fn fail(throttle: &Throttle, account: &str, source: Source<'_>) {
        drop(throttle.reserve(account, source).await.unwrap().unwrap());
    }

    #[tokio::test]
    async fn one_network_spends_only_its_own_budget_for_the_account() {
        let (throttle, _dir) = throttle(config()).await;
        fail(&throttle, "a@x.org", at("192.0.2.1")).await;
        fail(&throttle, "a@x.org", at("192.0.2.1")).await;
        let refused = throttle.reserve("a@x.org", at("192.0.2.1")).await.unwrap();
        match refused.err().unwrap() {
            Refused::Wait(wait) => assert!(wait > Duration::from_secs(50)),
            other => panic!("{other:?}"),
        }
        // The owner elsewhere is not affected.
        let owner = throttle
            .reserve("a@x.org", at("198.51.100.9"))
            .await
            .unwrap();
        throttle.succeeded(owner.unwrap()).await;
        // The attacker's network has one attempt left for other accounts.
        fail(&throttle, "b@x.org", at("192.0.2.1")).await;
        assert!(throttle
            .reserve("c@x.org", at("192.0.2.1"))
            .await
            .unwrap()
            .is_err());
    }

    #[tokio::test]
    async fn distributed_failures_stop_untrusted_clients_until_cleared() {
        let (throttle, _dir) = throttle(config()).await;
        for i in 0..4 {
            fail(&throttle, "a@x.org", at(&format!("192.0.2.{i}"))).await;
        }
        assert_eq!(throttle.consecutive_failures("a@x.org").await.unwrap(), 4);
        let refused = throttle
            .reserve("a@x.org", at("203.0.113.1"))
            .await
            .unwrap();
        assert_eq!(refused.err(), Some(Refused::Stopped));
        // A trusted browser still may, and its success clears the stop.
        let key = ServerKey::generate();
        let browsers = TrustedBrowsers::new(&key);
        let entry = browsers.read(&browsers.after_sign_in(&[], "a@x.org", 10), 11)[0].clone();
        let trusted = throttle
            .reserve("a@x.org", Source::Trusted(&entry))
            .await
            .unwrap();
        throttle.succeeded(trusted.unwrap()).await;
        assert_eq!(throttle.consecutive_failures("a@x.org").await.unwrap(), 0);
        assert!(throttle
            .reserve("a@x.org", at("203.0.113.1"))
            .await
            .unwrap()
            .is_ok());
    }

    #[tokio::test]
    async fn an_administrator_clears_the_stop() {
        let (throttle, _dir) = throttle(config()).await;
        for i in 0..4 {
            fail(&throttle, "a@x.org", at(&format!("192.0.2.{i}"))).await;
        }
        assert!(throttle
            .reserve("a@x.org", at("192.0.2.9"))
            .await
            .unwrap()
            .is_err());
        throttle.clear("a@x.org").await.unwrap();
        assert_eq!(throttle.consecutive_failures("a@x.org").await.unwrap(), 0);
        assert!(throttle
            .reserve("a@x.org", at("192.0.2.0"))
            .await
            .unwrap()
            .is_ok());
        // Pruning never forgets a cap that has not been cleared.
        fail(&throttle, "b@x.org", at("192.0.2.1")).await;
        throttle
            .store
            .prune_buckets(i64::MAX, FAILURES)
            .await
            .unwrap();
        assert_eq!(throttle.consecutive_failures("b@x.org").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn an_empty_bucket_is_refused_from_memory() {
        let (throttle, _dir) = throttle(config()).await;
        for _ in 0..2 {
            fail(&throttle, "a@x.org", at("192.0.2.1")).await;
        }
        assert!(throttle
            .reserve("a@x.org", at("192.0.2.1"))
            .await
            .unwrap()
            .is_err());
        // With the database gone, the storm is still refused, not failed.
        throttle.store.close().await;
        let refused = throttle.reserve("a@x.org", at("192.0.2.1")).await.unwrap();
        assert!(matches!(refused.err(), Some(Refused::Wait(w)) if w > Duration::from_secs(50)));
    }

    #[tokio::test]
    async fn right_passwords_in_parallel_wait_instead_of_being_refused() {
        let (throttle, _dir) = throttle(config()).await;
        let throttle = Arc::new(throttle);
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let throttle = throttle.clone();
            attempts.spawn(async move {
                let reserved = throttle.reserve("a@x.org", at("192.0.2.1")).await.unwrap();
                let Ok(reservation) = reserved else {
                    return false;
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                throttle.succeeded(reservation).await;
                true
            });
        }
        let results = attempts.join_all().await;
        assert!(results.iter().all(|ok| *ok), "{results:?}");
    }

    #[tokio::test]
    async fn wrong_passwords_in_parallel_cannot_slip_past_the_limit() {
        let (throttle, _dir) = throttle(config()).await;
        let throttle = Arc::new(throttle);
        let mut attempts = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let throttle = throttle.clone();
            attempts.spawn(async move {
                let reserved = throttle.reserve("a@x.org", at("192.0.2.1")).await.unwrap();
                let Ok(reservation) = reserved else {
                    return false;
                };
                tokio::time::sleep(Duration::from_millis(5)).await;
                drop(reservation);
                true
            });
        }
        let checked = attempts.join_all().await.iter().filter(|ok| **ok).count();
        assert_eq!(checked, 2);
    }

    #[tokio::test]
    async fn ipv6_is_throttled_per_64() {
        let (throttle, _dir) = throttle(config()).await;
        for (i, host) in ["2001:db8::1", "2001:db8::2", "2001:db8::3"]
            .iter()
            .enumerate()
        {
            fail(&throttle, &format!("{i}@x.org"), at(host)).await;
        }
        assert!(throttle
            .reserve("z@x.org", at("2001:db8::ffff"))
            .await
            .unwrap()
            .is_err());
        assert!(throttle
            .reserve("z@x.org", at("2001:db8:1::1"))
            .await
            .unwrap()
            .is_ok());
    }

    #[test]
    fn buckets_refill_and_never_run_backwards() {
        let r = Budget::Refilling(rate(5, 10));
        assert_eq!(r.tokens(None, 0), 5.0);
        assert_eq!(r.tokens(Some((0.0, 0)), 10_000), 1.0);
        assert_eq!(r.tokens(Some((0.0, 0)), 1_000_000), 5.0);
        assert_eq!(r.tokens(Some((2.0, 5_000)), 0), 2.0, "clock skew");
        let cap = Budget::Cap(100);
        assert_eq!(cap.tokens(None, 0), 100.0);
        // A cap stores failures: 97 left after 3, however long ago.
        assert_eq!(
            cap.tokens(Some((3.0, 0)), i64::MAX),
            97.0,
            "caps never refill"
        );
        assert_eq!(cap.stored(97.0, 5), (3.0, 5));
        assert_eq!(
            Budget::Cap(2).tokens(Some((3.0, 0)), 0),
            -1.0,
            "a lowered cap"
        );
        assert_eq!(cap.wait(0.0), None);
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
