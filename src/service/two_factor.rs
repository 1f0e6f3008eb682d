//! Two-factor authentication (TOTP, RFC 6238): enrolment, recovery codes,
//! the second step of a web sign-in, turning it off and an administrator's
//! reset. Every code anyone types is checked by [`Service::check_code`],
//! under the per-account throttle, and accepted at most once: a TOTP step
//! by one conditional UPDATE, a recovery code by one DELETE.

use std::time::Duration;

use super::actor::{Acting, Administrator};
use super::throttle::{Refused, Source};
use super::{parse_email, Client, Member, Service, ServiceError, SignIn};
use crate::credential::{
    looks_like_totp_code, MainPassword, RecoveryCode, Secret, SessionKey, TotpSecret,
    RECOVERY_CODES,
};
use crate::domain::{Account, AccountId, SessionPolicy, Standing, Timestamp};
use crate::store::WriteTx;

/// How long a sign-in waits for its second step.
pub const PENDING_SIGN_IN_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Wrong codes after which a pending sign-in is dead.
pub const PENDING_SIGN_IN_MAX_FAILURES: i64 = 5;

/// What happened, as the log (and a later audit trail) records it. Never
/// carries a secret.
#[derive(Clone, Copy, Debug)]
pub enum TwoFactorEvent {
    Enrolled,
    TurnedOff,
    Reset,
    RecoveryCodeUsed { left: i64 },
    RecoveryCodesRegenerated,
    WrongCode,
    TooManyWrongCodes,
}

/// The one place two-factor events are told.
fn record(event: TwoFactorEvent, account: &Account, by: Acting<'_>) {
    let email = &account.email;
    match event {
        TwoFactorEvent::Enrolled => {
            tracing::info!(%by, account = %email, "two-factor authentication turned on")
        }
        TwoFactorEvent::TurnedOff => {
            tracing::info!(%by, account = %email, "two-factor authentication turned off")
        }
        TwoFactorEvent::Reset => {
            tracing::warn!(%by, account = %email, "two-factor authentication reset")
        }
        TwoFactorEvent::RecoveryCodeUsed { left } => {
            tracing::warn!(%by, account = %email, left, "recovery code used")
        }
        TwoFactorEvent::RecoveryCodesRegenerated => {
            tracing::info!(%by, account = %email, "recovery codes regenerated")
        }
        TwoFactorEvent::WrongCode => {
            tracing::info!(%by, account = %email, "wrong two-factor code")
        }
        TwoFactorEvent::TooManyWrongCodes => {
            tracing::warn!(%by, account = %email, "too many wrong two-factor codes: the pending sign-in ended")
        }
    }
}

/// What a person sees to enrol: the QR code's content and the same secret
/// for typing by hand.
pub struct Enrolment {
    pub otpauth_uri: zeroize::Zeroizing<String>,
    pub grouped_secret: zeroize::Zeroizing<String>,
}

/// Where a member's account stands with two-factor authentication.
#[derive(Clone, Copy, Debug)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    pub recovery_codes_left: i64,
    pub standing: Standing,
}

/// The first step of a web sign-in, done.
pub enum SignInStep {
    /// Signed in.
    Done(Box<SignIn>),
    /// The password was right; a code is needed. The key goes into the
    /// browser's cookie and nowhere else.
    SecondFactor(SessionKey),
}

/// A finished second step.
pub struct SecondStepDone {
    pub sign_in: SignIn,
    /// Set when a recovery code was used: how many are left.
    pub recovery_codes_left: Option<i64>,
}

/// What a current code allows.
enum Change<'a> {
    ReplaceRecoveryCodes(&'a [[u8; 32]]),
    TurnOff,
}

/// Which kind of code was accepted.
enum Accepted {
    Totp,
    Recovery,
}

impl Service {
    /// The second-factor policy in force.
    pub fn two_factor_standing(&self, account: &Account) -> Standing {
        self.two_factor_policy().standing(account, self.clock.now())
    }

    pub async fn two_factor_status(&self, by: &Member) -> Result<TwoFactorStatus, ServiceError> {
        let account = by.account();
        Ok(TwoFactorStatus {
            enabled: account.two_factor_enabled,
            recovery_codes_left: self.store.recovery_codes_left(account.id).await?,
            standing: self.two_factor_standing(account),
        })
    }

    /// The enrolment in progress, started if there is none: the same secret
    /// until it is confirmed, so a reload shows what was scanned.
    pub async fn enrolment(&self, by: &Member) -> Result<Enrolment, ServiceError> {
        let account = by.account();
        if account.two_factor_enabled {
            return Err(already_on());
        }
        let secret = match self.store.two_factor(account.id).await? {
            Some(record) if !record.confirmed => {
                self.open_secret(&record.sealed_secret, account.id)?
            }
            _ => {
                let secret = TotpSecret::generate();
                let sealed = self.keys.totp.seal(&secret, account.id.0);
                let mut tx = self.begin_write().await?;
                if !tx
                    .put_unconfirmed_two_factor(account.id, &sealed, self.clock.now())
                    .await?
                {
                    return Err(already_on());
                }
                tx.commit().await?;
                secret
            }
        };
        Ok(Enrolment {
            otpauth_uri: secret.otpauth_uri(&self.issuer, account.email.as_str()),
            grouped_secret: secret.grouped_base32(),
        })
    }

    /// Turns two-factor authentication on once a current code proves the
    /// app has the secret; returns the recovery codes, to be shown once.
    pub async fn confirm_enrolment(
        &self,
        by: &Member,
        code: &str,
    ) -> Result<Vec<RecoveryCode>, ServiceError> {
        let account = by.account();
        if account.two_factor_enabled {
            return Err(already_on());
        }
        let Some(stored) = self.store.two_factor(account.id).await? else {
            return Err(ServiceError::invalid(
                "no_enrolment",
                "Start again: open Turn on two-factor authentication.",
            ));
        };
        let secret = self.open_secret(&stored.sealed_secret, account.id)?;
        let reservation = self.reserve_code_attempt(account).await?;
        let Some(step) = secret.matching_step(code, self.clock.now().seconds()) else {
            drop(reservation);
            record_wrong(account, Acting::Member(account));
            return Err(wrong_code());
        };
        let codes = self.new_recovery_codes();
        let mut tx = self.begin_write().await?;
        if !tx.confirm_two_factor(account.id, step).await? {
            return Err(already_on());
        }
        tx.set_two_factor_enabled(account.id, true).await?;
        tx.replace_recovery_codes(account.id, &self.digests(&codes))
            .await?;
        tx.commit().await?;
        self.throttle.succeeded(reservation).await;
        record(TwoFactorEvent::Enrolled, account, Acting::Member(account));
        Ok(codes)
    }

    /// Replaces all recovery codes; needs a current code.
    pub async fn regenerate_recovery_codes(
        &self,
        by: &Member,
        code: &str,
    ) -> Result<Vec<RecoveryCode>, ServiceError> {
        let account = by.account();
        let codes = self.new_recovery_codes();
        let digests = self.digests(&codes);
        self.with_current_code(account, code, Change::ReplaceRecoveryCodes(&digests))
            .await?;
        record(
            TwoFactorEvent::RecoveryCodesRegenerated,
            account,
            Acting::Member(account),
        );
        Ok(codes)
    }

    /// Turns two-factor authentication off; needs the main password and a
    /// current code.
    pub async fn turn_off_two_factor(
        &self,
        by: &Member,
        password: Secret,
        code: &str,
        client: &Client<'_>,
    ) -> Result<(), ServiceError> {
        let account = by.account();
        let password =
            MainPassword::candidate(password).map_err(|_| ServiceError::InvalidCredentials)?;
        self.check_main_password_throttled(&account.email, &password, client, None)
            .await?;
        self.with_current_code(account, code, Change::TurnOff)
            .await?;
        record(TwoFactorEvent::TurnedOff, account, Acting::Member(account));
        Ok(())
    }

    /// An administrator's (or the operator's) reset: the secret and the
    /// recovery codes are gone, and the person enrols again.
    pub async fn reset_two_factor(
        &self,
        by: &impl Administrator,
        target: AccountId,
    ) -> Result<Account, ServiceError> {
        let account = self.account_unchecked(target).await?;
        let mut tx = self.begin_write().await?;
        let had = tx.delete_two_factor(target).await?;
        if !tx.set_two_factor_enabled(target, false).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        tx.commit().await?;
        if had || account.two_factor_enabled {
            record(TwoFactorEvent::Reset, &account, by.acting());
        }
        Ok(account)
    }

    /// The operator's reset, by email.
    pub async fn reset_two_factor_by_email(
        &self,
        by: &impl Administrator,
        email: &str,
    ) -> Result<Account, ServiceError> {
        let email = parse_email(email)?;
        let Some((account, _)) = self.store.account_by_email(&email).await? else {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {email}"
            )));
        };
        self.reset_two_factor(by, account.id).await
    }

    /// Starts the second step for an account whose password was right.
    pub(super) async fn start_second_step(
        &self,
        account: &Account,
    ) -> Result<SessionKey, ServiceError> {
        let now = self.clock.now();
        self.store.prune_pending_sign_ins(now).await?;
        let key = SessionKey::generate();
        let expires_at =
            Timestamp::from_millis(now.millis() + PENDING_SIGN_IN_LIFETIME.as_millis() as i64);
        let mut tx = self.begin_write().await?;
        tx.create_pending_sign_in(&key.digest().0, account.id, now, expires_at)
            .await?;
        tx.commit().await?;
        tracing::info!(account = %account.email, "password right; waiting for the second factor");
        Ok(key)
    }

    /// Whether the browser's pending sign-in is still waiting for a code.
    pub async fn pending_sign_in_is_live(&self, key: &SessionKey) -> Result<bool, ServiceError> {
        Ok(self
            .store
            .pending_sign_in(&key.digest().0)
            .await?
            .is_some_and(|p| {
                p.expires_at > self.clock.now() && p.failures < PENDING_SIGN_IN_MAX_FAILURES
            }))
    }

    /// The second step: a current TOTP code or an unused recovery code
    /// turns the pending sign-in into a session.
    pub async fn finish_sign_in(
        &self,
        pending: &SessionKey,
        code: &str,
        client: &Client<'_>,
        policy: &SessionPolicy,
        trusted_browser: Option<&str>,
    ) -> Result<SecondStepDone, ServiceError> {
        let digest = pending.digest().0;
        let now = self.clock.now();
        let Some(found) = self.store.pending_sign_in(&digest).await? else {
            return Err(ServiceError::SignInExpired);
        };
        if found.expires_at <= now || found.failures >= PENDING_SIGN_IN_MAX_FAILURES {
            self.store.delete_pending_sign_in(&digest).await?;
            return Err(ServiceError::SignInExpired);
        }
        let account = self.account_unchecked(found.account_id).await?;
        crate::domain::rules::may_sign_in(&account)?;
        let reservation = self.reserve_code_attempt(&account).await?;
        let secret = match self.store.two_factor(account.id).await? {
            Some(record) if record.confirmed => {
                Some(self.open_secret(&record.sealed_secret, account.id)?)
            }
            _ => None,
        };
        self.delete_expired_sessions(policy).await?;
        let mut tx = self.begin_write().await?;
        let accepted = match self
            .accept(&mut *tx, &account, secret.as_ref(), code, true)
            .await?
        {
            Some(accepted) => accepted,
            None => {
                drop(tx);
                drop(reservation);
                record_wrong(&account, Acting::Member(&account));
                return Err(
                    match self.store.count_pending_sign_in_failure(&digest).await? {
                        Some(failures) if failures < PENDING_SIGN_IN_MAX_FAILURES => wrong_code(),
                        _ => {
                            self.store.delete_pending_sign_in(&digest).await?;
                            record(
                                TwoFactorEvent::TooManyWrongCodes,
                                &account,
                                Acting::Member(&account),
                            );
                            ServiceError::SignInExpired
                        }
                    },
                );
            }
        };
        if tx
            .take_pending_sign_in(&digest, now, PENDING_SIGN_IN_MAX_FAILURES)
            .await?
            .is_none()
        {
            // Finished (or ended) by another request meanwhile: its code
            // stays unused, as this transaction rolls back.
            return Err(ServiceError::SignInExpired);
        }
        let sign_in = self
            .open_session(&mut *tx, account.clone(), client, trusted_browser)
            .await?;
        tx.commit().await?;
        self.throttle.succeeded(reservation).await;
        let recovery_codes_left = match accepted {
            Accepted::Totp => None,
            Accepted::Recovery => {
                let left = self.store.recovery_codes_left(account.id).await?;
                record(
                    TwoFactorEvent::RecoveryCodeUsed { left },
                    &account,
                    Acting::Member(&account),
                );
                Some(left)
            }
        };
        Ok(SecondStepDone {
            sign_in,
            recovery_codes_left,
        })
    }

    /// Checks a current TOTP code for an enrolled account and, in the same
    /// transaction that accepts it, makes `change`.
    async fn with_current_code(
        &self,
        account: &Account,
        code: &str,
        change: Change<'_>,
    ) -> Result<(), ServiceError> {
        let secret = match self.store.two_factor(account.id).await? {
            Some(record) if record.confirmed && account.two_factor_enabled => {
                self.open_secret(&record.sealed_secret, account.id)?
            }
            _ => {
                return Err(ServiceError::invalid(
                    "two_factor_off",
                    "Two-factor authentication is off for this account.",
                ))
            }
        };
        let reservation = self.reserve_code_attempt(account).await?;
        let mut tx = self.begin_write().await?;
        if self
            .accept(&mut *tx, account, Some(&secret), code, false)
            .await?
            .is_none()
        {
            drop(tx);
            drop(reservation);
            record_wrong(account, Acting::Member(account));
            return Err(wrong_code());
        }
        match change {
            Change::ReplaceRecoveryCodes(digests) => {
                tx.replace_recovery_codes(account.id, digests).await?
            }
            Change::TurnOff => {
                tx.delete_two_factor(account.id).await?;
                tx.set_two_factor_enabled(account.id, false).await?;
            }
        }
        tx.commit().await?;
        self.throttle.succeeded(reservation).await;
        Ok(())
    }

    /// Accepts `code` for the account inside `tx`: a TOTP code whose step
    /// is later than the last accepted one (the conditional UPDATE decides),
    /// or, when allowed, an unused recovery code (the DELETE decides).
    /// `None`: wrong, or used already.
    async fn accept(
        &self,
        tx: &mut dyn WriteTx,
        account: &Account,
        secret: Option<&TotpSecret>,
        code: &str,
        allow_recovery: bool,
    ) -> Result<Option<Accepted>, ServiceError> {
        if looks_like_totp_code(code) {
            let Some(step) = secret.and_then(|s| s.matching_step(code, self.clock.now().seconds()))
            else {
                return Ok(None);
            };
            return Ok(tx
                .advance_two_factor_step(account.id, step)
                .await?
                .then_some(Accepted::Totp));
        }
        if !allow_recovery {
            return Ok(None);
        }
        let Some(digest) = self.keys.recovery.digest(code) else {
            return Ok(None);
        };
        Ok(tx
            .consume_recovery_code(account.id, &digest)
            .await?
            .then_some(Accepted::Recovery))
    }

    /// One attempt from the account's second-factor budget, shared by every node.
    async fn reserve_code_attempt(
        &self,
        account: &Account,
    ) -> Result<super::throttle::Reservation, ServiceError> {
        match self
            .throttle
            .reserve(&format!("#{}", account.id.0), Source::SecondFactor)
            .await?
        {
            Ok(reservation) => Ok(reservation),
            Err(Refused::Wait(retry_after)) => {
                tracing::warn!(account = %account.email, "two-factor code refused: too many wrong codes for this account");
                Err(ServiceError::RateLimited { retry_after })
            }
            Err(Refused::Stopped) => Err(ServiceError::SignInStopped),
        }
    }

    fn open_secret(&self, sealed: &str, account: AccountId) -> Result<TotpSecret, ServiceError> {
        self.keys.totp.open(sealed, account.0).map_err(|e| {
            ServiceError::Internal(format!(
                "cannot open the two-factor secret of account {}: {e}",
                account.0
            ))
        })
    }

    fn new_recovery_codes(&self) -> Vec<RecoveryCode> {
        (0..RECOVERY_CODES)
            .map(|_| RecoveryCode::generate())
            .collect()
    }

    fn digests(&self, codes: &[RecoveryCode]) -> Vec<[u8; 32]> {
        codes
            .iter()
            .filter_map(|code| self.keys.recovery.digest(code.expose()))
            .collect()
    }

    /// Makes sure this node's key opens the stored secrets: a node with
    /// another key must not start and then refuse every code.
    pub(super) async fn check_two_factor_secrets(&self) -> Result<(), ServiceError> {
        if let Some((account, sealed)) = self.store.some_two_factor_secret().await? {
            if let Err(e) = self.keys.totp.open(&sealed, account.0) {
                return Err(ServiceError::invalid(
                    "wrong_server_key",
                    format!(
                        "this node's secret key (id {}) cannot open the two-factor secrets stored in the database ({e}); every node must use the key file the secrets were written with, so copy it from a node that runs, or restore it from the backup",
                        self.keys.id
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn record_wrong(account: &Account, by: Acting<'_>) {
    record(TwoFactorEvent::WrongCode, account, by);
}

fn wrong_code() -> ServiceError {
    ServiceError::WrongCode
}

fn already_on() -> ServiceError {
    ServiceError::invalid(
        "two_factor_on",
        "Two-factor authentication is already on for this account.",
    )
}
