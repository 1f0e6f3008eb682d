//! Token buckets that slow down main-password guessing, per account and per
//! client address. A check reserves a token before any hashing happens and
//! gives it back when the password was right, so only failures count and
//! concurrent guesses cannot all slip through before the first one fails.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Above this many tracked keys, full buckets are dropped.
const PRUNE_ABOVE: usize = 100_000;

pub struct Throttle {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<Key, Bucket>>,
}

/// A reserved attempt; hand it back with [`Throttle::release`] when it should
/// not count (the password was right, or the server failed).
#[must_use]
pub struct Reservation {
    keys: [Key; 2],
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt from both the account's and the address's bucket,
    /// or says how long to wait.
    pub fn reserve(&self, account: &str, address: IpAddr) -> Result<Reservation, Duration> {
        let keys = [
            Key::Account(account.to_owned()),
            Key::Address(network_of(address)),
        ];
        let now = Instant::now();
        let mut buckets = self.lock();
        if buckets.len() > PRUNE_ABOVE {
            self.prune(&mut buckets, now);
        }
        let mut wait = Duration::ZERO;
        for key in &keys {
            let rate = self.rate(key);
            let bucket = refilled(buckets.get(key).copied(), rate, now);
            if bucket.tokens < 1.0 {
                wait = wait.max(rate.refill_every.mul_f64(1.0 - bucket.tokens));
            }
        }
        if !wait.is_zero() {
            return Err(round_up_to_second(wait));
        }
        for key in &keys {
            let mut bucket = refilled(buckets.get(key).copied(), self.rate(key), now);
            bucket.tokens -= 1.0;
            buckets.insert(key.clone(), bucket);
        }
        Ok(Reservation { keys })
    }

    /// The attempt does not count after all.
    pub fn release(&self, reservation: Reservation) {
        let mut buckets = self.lock();
        for key in reservation.keys {
            let burst = f64::from(self.rate(&key).burst);
            if let Some(bucket) = buckets.get_mut(&key) {
                bucket.tokens = (bucket.tokens + 1.0).min(burst);
            }
        }
    }

    fn rate(&self, key: &Key) -> Rate {
        match key {
            Key::Account(_) => self.config.per_account,
            Key::Address(_) => self.config.per_address,
        }
    }

    fn prune(&self, buckets: &mut HashMap<Key, Bucket>, now: Instant) {
        buckets.retain(|key, bucket| {
            let rate = self.rate(key);
            refilled(Some(*bucket), rate, now).tokens < f64::from(rate.burst)
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn refilled(bucket: Option<Bucket>, rate: Rate, now: Instant) -> Bucket {
    let burst = f64::from(rate.burst);
    match bucket {
        None => Bucket {
            tokens: burst,
            updated: now,
        },
        Some(b) => {
            let gained = now.duration_since(b.updated).as_secs_f64()
                / rate.refill_every.as_secs_f64().max(f64::EPSILON);
            Bucket {
                tokens: (b.tokens + gained).min(burst),
                updated: now,
            }
        }
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

    fn strict() -> Throttle {
        Throttle::new(ThrottleConfig {
            per_account: Rate {
                burst: 2,
                refill_every: Duration::from_secs(60),
            },
            per_address: Rate {
                burst: 3,
                refill_every: Duration::from_secs(60),
            },
        })
    }

    #[test]
    fn failures_exhaust_the_account_bucket() {
        let throttle = strict();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let _ = throttle.reserve("a@x.org", ip).unwrap();
        let _ = throttle.reserve("a@x.org", ip).unwrap();
        let wait = throttle.reserve("a@x.org", ip).err().unwrap();
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        // Another account from the same address still has one attempt left.
        let _ = throttle.reserve("b@x.org", ip).unwrap();
        assert!(throttle.reserve("c@x.org", ip).is_err());
    }

    #[test]
    fn successes_do_not_count() {
        let throttle = strict();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            let reservation = throttle.reserve("a@x.org", ip).unwrap();
            throttle.release(reservation);
        }
    }

    #[test]
    fn ipv6_is_throttled_per_64() {
        let throttle = strict();
        for host in ["2001:db8::1", "2001:db8::2", "2001:db8::3"] {
            let _ = throttle.reserve(host, host.parse().unwrap()).unwrap();
        }
        let other_host: IpAddr = "2001:db8::ffff".parse().unwrap();
        assert!(throttle.reserve("z@x.org", other_host).is_err());
        let other_net: IpAddr = "2001:db8:1::1".parse().unwrap();
        assert!(throttle.reserve("z@x.org", other_net).is_ok());
    }
}
