use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;
use tokio::sync::{oneshot, Semaphore};
use zeroize::{Zeroize, Zeroizing};

use super::Secret;

/// Longest main password accepted at all, so nobody can make us hash megabytes.
pub const MAX_PASSWORD_BYTES: usize = 1024;

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
    #[error("The password must not be longer than 1024 bytes.")]
    TooLong,
}

impl MainPassword {
    /// A password someone signs in with: anything is tried, except absurd
    /// lengths (no password that may be set is longer). What a new password
    /// must be is [`PasswordPolicy`](crate::domain::PasswordPolicy)'s to say.
    pub fn candidate(raw: Secret) -> Result<Self, PasswordError> {
        if raw.expose().len() > MAX_PASSWORD_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(raw.into_inner()))
    }

    /// `chars` random letters and digits (about 5.95 bits each).
    pub fn generate(chars: usize) -> Self {
        Self(Zeroizing::new(
            Alphanumeric.sample_string(&mut OsRng, chars),
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

/// Hashes and verifies main passwords on a fixed set of hashing slots, so a
/// flood of sign-in attempts can neither block the async workers nor grow
/// memory: each slot is one dedicated thread owning one 19 MiB block buffer,
/// allocated on its first hash and reused (and wiped) for every hash after
/// that, so the process never holds more than slots × 19 MiB of argon2
/// memory, however many passwords arrive. A check waits up to
/// [`QUEUE_TIMEOUT`] for a free slot, then gives up with [`HashingError::Busy`].
///
/// Every `PasswordHasher::new()` in a process shares the same slots (one per
/// CPU): several services in one process (tests, several nodes) do not
/// multiply the bound.
#[derive(Clone)]
pub struct PasswordHasher {
    pool: Arc<Pool>,
}

/// What unknown emails are verified against; made on first use, in a slot
/// like every other hash.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

/// The slots every `PasswordHasher::new()` shares; its threads live as long
/// as the process.
static SHARED_POOL: OnceLock<Arc<Pool>> = OnceLock::new();

impl PasswordHasher {
    pub fn new() -> Self {
        let pool = SHARED_POOL.get_or_init(|| {
            let slots = std::thread::available_parallelism().map_or(2, |n| n.get());
            Arc::new(Pool::new(slots, QUEUE_TIMEOUT))
        });
        Self { pool: pool.clone() }
    }

    /// Slots of its own, whose threads end when the last clone is dropped.
    #[cfg(test)]
    fn with_slots(slots: usize, queue_timeout: Duration) -> Self {
        Self {
            pool: Arc::new(Pool::new(slots, queue_timeout)),
        }
    }

    /// Makes the dummy hash now, so the first unknown email does not pay
    /// for it (which would make it slower than a wrong password).
    pub async fn warm_up(&self) -> Result<(), HashingError> {
        self.run(|slot| dummy_hash(slot).map(drop)).await?
    }

    pub async fn hash(&self, password: &MainPassword) -> Result<String, HashingError> {
        let password = password.clone();
        self.run(move |slot| hash_now(slot, &password)).await?
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
            .run(move |slot| match stored {
                Some(hash) => verify_now(slot, &password, &hash),
                None => {
                    let dummy = dummy_hash(slot)?;
                    verify_now(slot, &password, dummy)
                }
            })
            .await??;
        Ok(known && matches)
    }

    /// Runs `work` in a free slot, waiting for one at most the queue timeout.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Slot) -> T + Send + 'static,
    ) -> Result<T, HashingError> {
        let pool = &self.pool;
        let permit = tokio::time::timeout(pool.queue_timeout, pool.free.clone().acquire_owned())
            .await
            .map_err(|_| HashingError::Busy)?
            .map_err(|_| HashingError::Busy)?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |slot| {
            // The permit goes with the job, not with the waiting request: a
            // request given up on still occupies its slot until it is done.
            let _permit = permit;
            // The asker may have given up; the work is done either way.
            let _ = answer.send(work(slot));
        });
        // There are as many permits as threads, so a job never waits here
        // longer than a thread takes to come back for the next one.
        pool.jobs
            .send(job)
            .map_err(|_| HashingError::Failed("the hashing threads have stopped".into()))?;
        answered
            .await
            .map_err(|_| HashingError::Failed("a password hashing job panicked".into()))
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new()
    }
}

type Job = Box<dyn FnOnce(&mut Slot) + Send>;

/// A fixed number of slot threads fed by one channel, and a semaphore with
/// one permit per thread that requests wait on.
struct Pool {
    free: Arc<Semaphore>,
    jobs: mpsc::Sender<Job>,
    queue_timeout: Duration,
}

impl Pool {
    fn new(slots: usize, queue_timeout: Duration) -> Self {
        let slots = slots.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..slots {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-slot-{i}"))
                .spawn(move || slot_thread(&queue))
                .expect("cannot start a password hashing thread");
        }
        Self {
            free: Arc::new(Semaphore::new(slots)),
            jobs,
            queue_timeout,
        }
    }
}

/// One slot: takes jobs until every sender is gone, all in the same buffer.
fn slot_thread(queue: &Mutex<mpsc::Receiver<Job>>) {
    let mut slot = Slot::default();
    loop {
        // Only the waiting is under the lock: idle threads queue on the
        // mutex, the one holding it on the channel.
        let next = queue.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut slot))).is_err() {
            // The job's answer channel is dropped, so its asker hears of it;
            // the slot lives on, wiped.
            wipe(&mut slot.blocks);
        }
    }
}

/// A hashing slot's memory: [`SLOT_BLOCKS`] argon2 blocks (19 MiB), allocated
/// on first use and kept, zero between hashes.
#[derive(Default)]
struct Slot {
    blocks: Vec<Block>,
}

/// argon2 blocks (1 KiB each) a slot holds: what the default parameters need.
const SLOT_BLOCKS: usize = MEMORY_KIB as usize;

impl Slot {
    /// Raw argon2 of `password` into `out`, in this slot's buffer. Parameters
    /// needing more memory than a slot has are refused, not allocated for.
    fn hash_into(
        &mut self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashingError> {
        let needed = argon2.params().block_count();
        if needed > SLOT_BLOCKS {
            return Err(HashingError::Failed(format!(
                "the hash needs {needed} KiB of memory, more than the {SLOT_BLOCKS} KiB of a hashing slot"
            )));
        }
        if self.blocks.is_empty() {
            self.blocks = vec![Block::new(); SLOT_BLOCKS];
        }
        let blocks = &mut self.blocks[..needed];
        let done = argon2.hash_password_into_with_memory(password, salt, out, &mut *blocks);
        // What the blocks hold is derived from the password.
        wipe(blocks);
        done.map_err(|e| HashingError::Failed(e.to_string()))
    }
}

/// Volatile writes, which the compiler keeps although nothing reads them.
/// (Not `Vec::zeroize`: that also empties the vector, and the next hash
/// would allocate again.)
fn wipe(blocks: &mut [Block]) {
    blocks.iter_mut().for_each(Zeroize::zeroize);
}

fn default_params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid params")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, default_params())
}

fn dummy_hash(slot: &mut Slot) -> Result<&'static str, HashingError> {
    if let Some(hash) = DUMMY_HASH.get() {
        return Ok(hash);
    }
    let hash = hash_now(slot, &MainPassword::generate(20))?;
    // Two slots may race to make it; either hash will do.
    Ok(DUMMY_HASH.get_or_init(|| hash))
}

fn hash_now(slot: &mut Slot, password: &MainPassword) -> Result<String, HashingError> {
    hash_with_salt(slot, password, &SaltString::generate(&mut OsRng))
}

/// The PHC string `Argon2::hash_password` would make with the default
/// parameters: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<32-byte hash>`.
fn hash_with_salt(
    slot: &mut Slot,
    password: &MainPassword,
    salt: &SaltString,
) -> Result<String, HashingError> {
    let failed = |e: password_hash::Error| HashingError::Failed(e.to_string());
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(failed)?;
    let argon2 = argon2();
    let mut out = Zeroizing::new([0u8; Params::DEFAULT_OUTPUT_LEN]);
    slot.hash_into(
        &argon2,
        password.expose().as_bytes(),
        salt_bytes,
        &mut out[..],
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon2.params()).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out[..]).map_err(failed)?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the PHC string `stored`, hashed with the
/// algorithm, version, parameters, salt and output length `stored` names,
/// as `PasswordVerifier::verify_password` would, so old hashes keep
/// verifying after the defaults change. Anything unreadable is no match.
fn verify_now(
    slot: &mut Slot,
    password: &MainPassword,
    stored: &str,
) -> Result<bool, HashingError> {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return Ok(false);
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return Ok(false);
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return Ok(false),
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return Ok(false);
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return Ok(false);
    };
    let argon2 = Argon2::new(algorithm, version, params);
    let mut out = Zeroizing::new([0u8; Output::MAX_LENGTH]);
    let out = &mut out[..expected.len()];
    match slot.hash_into(&argon2, password.expose().as_bytes(), salt_bytes, out) {
        Ok(()) => Ok(out.ct_eq(expected.as_bytes()).into()),
        // Our own limit: the operator must hear of it, not the person.
        Err(e) if argon2.params().block_count() > SLOT_BLOCKS => Err(e),
        Err(_) => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let hasher = PasswordHasher::new();
        let password = MainPassword::candidate("correct horse".into()).unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!hash.contains("correct horse"));
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
        let wrong = MainPassword::candidate("wrong horse".into()).unwrap();
        assert!(!hasher.verify(&wrong, Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&password, None).await.unwrap());
        assert!(!hasher.verify(&password, Some("not a hash")).await.unwrap());
    }

    /// The hashes the server stored before slots: `Argon2::hash_password`.
    fn old_hash(argon2: &Argon2<'_>, password: &str, salt: &SaltString) -> String {
        use argon2::password_hash::PasswordHasher as _;
        argon2
            .hash_password(password.as_bytes(), salt)
            .unwrap()
            .to_string()
    }

    fn old_verify(password: &str, hash: &str) -> bool {
        use argon2::password_hash::PasswordVerifier as _;
        argon2()
            .verify_password(password.as_bytes(), &PasswordHash::new(hash).unwrap())
            .is_ok()
    }

    fn candidate(password: &str) -> MainPassword {
        MainPassword::candidate(password.into()).unwrap()
    }

    #[test]
    fn same_phc_string_as_the_old_path() {
        let salt = SaltString::generate(&mut OsRng);
        let mut slot = Slot::default();
        let new = hash_with_salt(&mut slot, &candidate("correct horse"), &salt).unwrap();
        assert_eq!(new, old_hash(&argon2(), "correct horse", &salt));
    }

    #[tokio::test]
    async fn old_hashes_verify_with_the_new_path_and_new_with_the_old() {
        let hasher = PasswordHasher::with_slots(2, QUEUE_TIMEOUT);
        let right = candidate("correct horse");
        let wrong = candidate("wrong horse");

        let old = old_hash(
            &argon2(),
            "correct horse",
            &SaltString::generate(&mut OsRng),
        );
        assert!(hasher.verify(&right, Some(&old)).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(&old)).await.unwrap());

        let new = hasher.hash(&right).await.unwrap();
        assert!(old_verify("correct horse", &new));
        assert!(!old_verify("wrong horse", &new));
    }

    #[tokio::test]
    async fn stored_parameters_are_used() {
        // Cheaper, other lanes, other lengths, other algorithms and versions:
        // whatever the stored string says, as `verify_password` did.
        let hasher = PasswordHasher::with_slots(1, QUEUE_TIMEOUT);
        let right = candidate("correct horse");
        let wrong = candidate("wrong horse");
        for (algorithm, version, m, t, p, len) in [
            (Algorithm::Argon2id, Version::V0x13, 64, 1, 1, 32),
            (Algorithm::Argon2id, Version::V0x13, 256, 3, 4, 16),
            (Algorithm::Argon2id, Version::V0x13, 1024, 1, 1, 64),
            (Algorithm::Argon2i, Version::V0x13, 128, 2, 2, 32),
            (Algorithm::Argon2d, Version::V0x10, 128, 2, 1, 32),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                MEMORY_KIB,
                ITERATIONS,
                2,
                32,
            ),
        ] {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let argon2 = Argon2::new(algorithm, version, params);
            let old = old_hash(&argon2, "correct horse", &SaltString::generate(&mut OsRng));
            assert!(hasher.verify(&right, Some(&old)).await.unwrap(), "{old}");
            assert!(!hasher.verify(&wrong, Some(&old)).await.unwrap(), "{old}");
        }
    }

    #[tokio::test]
    async fn a_hash_needing_more_than_a_slot_is_refused() {
        let hasher = PasswordHasher::with_slots(1, QUEUE_TIMEOUT);
        let salt = SaltString::generate(&mut OsRng);
        let big = Params::new(MEMORY_KIB + 8, 1, 1, None).unwrap();
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&big).unwrap(),
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&[0; 32]).unwrap()),
        }
        .to_string();
        let err = hasher
            .verify(&candidate("x"), Some(&phc))
            .await
            .unwrap_err();
        assert!(matches!(err, HashingError::Failed(_)), "{err:?}");
        // The slot is still there.
        assert!(!hasher.verify(&candidate("x"), None).await.unwrap());
    }

    #[tokio::test]
    async fn unreadable_hashes_do_not_match() {
        let hasher = PasswordHasher::with_slots(1, QUEUE_TIMEOUT);
        let good = hasher.hash(&candidate("correct horse")).await.unwrap();
        let (head, tail) = good.rsplit_once('$').unwrap();
        for stored in [
            String::new(),
            "not a hash".into(),
            "$argon2id$not-a-real-hash".into(),
            format!("{head}$"),
            head.to_owned(),
            good.replace("argon2id", "scrypt"),
            good.replace("v=19", "v=18"),
            good.replace("m=19456", "m=19456,x=1"),
            good.replace("m=19456", "m=4"),
            format!("{head}${}", &tail[..4]),
        ] {
            assert!(
                !hasher
                    .verify(&candidate("correct horse"), Some(&stored))
                    .await
                    .unwrap(),
                "{stored:?}"
            );
        }
    }

    #[test]
    fn the_dummy_hash_costs_what_a_stored_hash_costs() {
        // Same algorithm, parameters, salt and output lengths as what `hash`
        // stores, checked by the same code: the same work.
        let mut slot = Slot::default();
        let dummy = dummy_hash(&mut slot).unwrap();
        let stored = hash_now(&mut slot, &candidate("correct horse")).unwrap();
        let shape = |hash: &str| {
            let parsed = PasswordHash::new(hash).unwrap();
            (
                parsed.algorithm.to_string(),
                parsed.version,
                parsed.params.to_string(),
                parsed.salt.unwrap().len(),
                parsed.hash.unwrap().len(),
            )
        };
        assert_eq!(shape(dummy), shape(&stored));
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn a_slot_reuses_one_buffer_and_wipes_it() {
        let mut slot = Slot::default();
        let password = candidate("correct horse");
        let first = hash_now(&mut slot, &password).unwrap();
        let buffer = slot.blocks.as_ptr();
        assert_eq!(slot.blocks.len(), SLOT_BLOCKS);
        assert!(verify_now(&mut slot, &password, &first).unwrap());
        hash_now(&mut slot, &password).unwrap();
        assert_eq!(slot.blocks.as_ptr(), buffer);
        assert_eq!(slot.blocks.len(), SLOT_BLOCKS);
        assert!(slot
            .blocks
            .iter()
            .all(|block| block.as_ref().iter().all(|word| *word == 0)));
    }

    #[tokio::test]
    async fn busy_when_no_slot_frees_up_in_time() {
        let hasher = PasswordHasher::with_slots(1, Duration::from_millis(100));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let holding = hasher.clone();
        let held = tokio::spawn(async move {
            holding
                .run(move |_| {
                    let _ = hold.recv();
                })
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let err = hasher.verify(&candidate("x"), None).await.unwrap_err();
        assert!(matches!(err, HashingError::Busy), "{err:?}");
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert!(!hasher.verify(&candidate("x"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_panicking_job_leaves_its_slot_working() {
        let hasher = PasswordHasher::with_slots(1, QUEUE_TIMEOUT);
        let err = hasher.run(|_| panic!("on purpose")).await.unwrap_err();
        assert!(matches!(err, HashingError::Failed(_)), "{err:?}");
        let password = candidate("correct horse");
        let hash = hasher.hash(&password).await.unwrap();
        assert!(hasher.verify(&password, Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn many_checks_at_once_use_only_the_slots_threads() {
        let hasher = PasswordHasher::with_slots(2, QUEUE_TIMEOUT);
        let checks = (0..8).map(|_| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                hasher
                    .run(|_| std::thread::current().name().map(str::to_owned))
                    .await
                    .unwrap()
            })
        });
        let mut names = Vec::new();
        for check in checks {
            names.push(check.await.unwrap().unwrap());
        }
        names.sort();
        names.dedup();
        assert!(names.len() <= 2, "{names:?}");
        assert!(
            names.iter().all(|n| n.starts_with("argon2-slot-")),
            "{names:?}"
        );
    }

    #[test]
    fn length_rules() {
        assert!(MainPassword::candidate("x".repeat(MAX_PASSWORD_BYTES).into()).is_ok());
        assert_eq!(
            MainPassword::candidate("x".repeat(MAX_PASSWORD_BYTES + 1).into()).unwrap_err(),
            PasswordError::TooLong
        );
        assert!(MainPassword::candidate(Secret::default()).is_ok());
        assert_eq!(MainPassword::generate(20).expose().len(), 20);
        assert_eq!(
            format!("{:?}", MainPassword::generate(20)),
            "MainPassword(<redacted>)"
        );
    }
}
