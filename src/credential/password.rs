use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use super::Secret;

/// Shortest main password that may be set.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest main password accepted at all, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;
const GENERATED_CHARS: usize = 20;

/// argon2id with OWASP's recommended parameters: 19 MiB, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;

/// How long a password check may wait for a free hashing slot before the
/// server answers that it is busy.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

/// A person's main password. Debug output is redacted and memory wiped on drop.
#[derive(Clone)]
pub struct MainPassword(Zeroizing<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("The password must have at least 8 characters.")]
    TooShort,
    #[error("The password must not be longer than 1024 bytes.")]
    TooLong,
}

impl MainPassword {
    /// A password someone wants to set: length rules apply.
    pub fn new_checked(raw: Secret) -> Result<Self, PasswordError> {
        let raw = raw.into_inner();
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        Ok(Self(raw))
    }

    /// A password someone signs in with: anything is tried, except absurd lengths.
    pub fn candidate(raw: Secret) -> Result<Self, PasswordError> {
        if raw.expose().len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.into_inner()))
    }

    /// 20 random letters and digits (about 119 bits).
    pub fn generate() -> Self {
        Self(Zeroizing::new(
            Alphanumeric.sample_string(&mut OsRng, GENERATED_CHARS),
        ))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for MainPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MainPassword(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashingError {
    #[error("too many password checks are waiting")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// Hashes and verifies main passwords on the blocking pool, a bounded number
/// at a time, so a flood of sign-in attempts can neither block the async
/// workers nor exhaust memory (each hash takes 19 MiB).
#[derive(Clone)]
pub struct PasswordHasher {
    slots: Arc<Semaphore>,
}

/// What unknown emails are verified against; made on first use, on the
/// blocking pool like every other hash.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash() -> &'static str {
    DUMMY_HASH
        .get_or_init(|| hash_now(&MainPassword::generate()).expect("argon2 parameters are valid"))
}

impl PasswordHasher {
    pub fn new() -> Self {
        let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            slots: Arc::new(Semaphore::new(slots)),
        }
    }

    /// Makes the dummy hash now, so the first unknown email does not pay
    /// for it (which would make it slower than a wrong password).
    pub async fn warm_up(&self) -> Result<(), HashingError> {
        self.run(|| {
            dummy_hash();
        })
        .await
    }

    pub async fn hash(&self, password: &MainPassword) -> Result<String, HashingError> {
        let password = password.clone();
        self.run(move || hash_now(&password)).await?
    }

    /// Verifies against `stored`, or against a dummy hash when there is no
    /// account, so an unknown email costs exactly what a wrong password costs.
    pub async fn verify(
        &self,
        password: &MainPassword,
        stored: Option<&str>,
    ) -> Result<bool, HashingError> {
        let password = password.clone();
        let known = stored.is_some();
        let stored = stored.map(str::to_owned);
        let matches = self
            .run(move || match stored {
                Some(hash) => verify_now(&password, &hash),
                None => verify_now(&password, dummy_hash()),
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let permit = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| HashingError::Busy)?
            .map_err(|_| HashingError::Busy)?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| HashingError::Failed(e.to_string()))
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid params");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &MainPassword) -> Result<String, HashingError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashingError::Failed(e.to_string()))
}

fn verify_now(password: &MainPassword, hash: &str) -> bool {
    // The stored hash carries its own parameters, so old hashes keep verifying
    // after the defaults change.
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let hasher = PasswordHasher::new();
        let password = MainPassword::new_checked("correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = MainPassword::candidate("wrong horse".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
        assert!(!hasher.verify(&password, Some("not a hash")).await.unwrap());
    }

    #[test]
    fn length_rules() {
        assert_eq!(
            MainPassword::new_checked("short".into()).unwrap_err(),
            PasswordError::TooShort
        );
        assert_eq!(
            MainPassword::candidate("x".repeat(MAX_PASSWORD_BYTES + 1).into()).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(MainPassword::candidate(Secret::default()).is_ok());
        assert_eq!(MainPassword::generate().expose().len(), GENERATED_CHARS);
        assert_eq!(
            format!("{:?}", MainPassword::generate()),
            "MainPassword(<redacted>)"
        );
    }
}
