//! Signing in to the web interface, and the sessions that result.

use super::two_factor::SignInStep;
use super::{parse_email, Client, Member, Service, ServiceError};
use crate::credential::{CsrfSecret, MainPassword, Secret, SessionKey};
use crate::domain::{
    rules, Account, LastUse, Notice, SessionId, SessionPolicy, Timestamp, WebSession,
};
use crate::store::{NewSession, WriteTx};

/// A fresh session: the key goes into the browser's cookie, nowhere else.
pub struct SignIn {
    pub member: Member,
    pub key: SessionKey,
    /// The trusted-browser cookie's new value: this browser is now trusted
    /// for this account (and still for the others it was).
    pub trusted_browser: String,
}

impl Service {
    /// Email and main password buy a web session, or, for an account with
    /// two-factor authentication, a pending sign-in that a code finishes
    /// ([`Service::finish_sign_in`]). Device passwords never do: they are
    /// not any account's main password.
    pub async fn sign_in(
        &self,
        email: &str,
        password: Secret,
        client: &Client<'_>,
        policy: &SessionPolicy,
        trusted_browser: Option<&str>,
    ) -> Result<SignInStep, ServiceError> {
        let email = parse_email(email)?;
        let password =
            MainPassword::candidate(password).map_err(|_| ServiceError::InvalidCredentials)?;
        let now = Timestamp::now();
        let trusted = trusted_browser
            .map(|cookie| self.keys.trusted_browsers.read(cookie, now.seconds()))
            .unwrap_or_default();
        let entry = trusted.iter().find(|entry| entry.account == email.as_str());
        let account = self
            .check_main_password_throttled(&email, &password, client, entry)
            .await?;
        rules::may_sign_in(&account)?;
        if account.two_factor_enabled {
            return Ok(SignInStep::SecondFactor(
                self.start_second_step(&account).await?,
            ));
        }
        self.delete_expired_sessions(policy).await?;
        let mut tx = self.begin_write().await?;
        let signed = self
            .open_session(&mut *tx, account, client, trusted_browser)
            .await?;
        tx.commit().await?;
        Ok(SignInStep::Done(Box::new(signed)))
    }

    /// Creates the session of a finished sign-in inside `tx`, and the
    /// trusted-browser cookie's new value: only now is this browser trusted
    /// for the account.
    pub(super) async fn open_session(
        &self,
        tx: &mut dyn WriteTx,
        account: Account,
        client: &Client<'_>,
        trusted_browser: Option<&str>,
    ) -> Result<SignIn, ServiceError> {
        let now = Timestamp::now();
        let trusted = trusted_browser
            .map(|cookie| self.keys.trusted_browsers.read(cookie, now.seconds()))
            .unwrap_or_default();
        let key = SessionKey::generate();
        let session = tx
            .create_session(&NewSession {
                digest: key.digest(),
                account_id: account.id,
                csrf: CsrfSecret::generate(),
                created_at: now,
                ip: client.ip,
                user_agent: client
                    .user_agent
                    .as_deref()
                    .and_then(LastUse::clean_user_agent),
            })
            .await?;
        tracing::info!(account = %account.email, session = session.id.0, "signed in");
        let trusted_browser = self.keys.trusted_browsers.after_sign_in(
            &trusted,
            account.email.as_str(),
            now.seconds(),
        );
        Ok(SignIn {
            member: Member::new(account, session, key.digest()),
            key,
            trusted_browser,
        })
    }

    /// Outside any write transaction: on SQLite a second writer on the pool
    /// would wait for the transaction's own lock.
    pub(super) async fn delete_expired_sessions(
        &self,
        policy: &SessionPolicy,
    ) -> Result<(), ServiceError> {
        let (idle_before, created_before) = policy.cutoffs(Timestamp::now());
        self.store
            .delete_expired_sessions(idle_before, created_before)
            .await?;
        Ok(())
    }

    /// A token for a fresh sign-in form.
    pub fn issue_sign_in_form(&self) -> String {
        self.keys.sign_in_forms.issue(Timestamp::now().seconds())
    }

    /// Whether a sign-in form's token is one this server issued, has not
    /// expired and was not used before; it is used up either way.
    pub async fn spend_sign_in_form(&self, token: &str) -> Result<bool, ServiceError> {
        let Some(form) = self
            .keys
            .sign_in_forms
            .check(token, Timestamp::now().seconds())
        else {
            return Ok(false);
        };
        Ok(self
            .store
            .spend_sign_in_form(&form.nonce, form.expires_at)
            .await?)
    }

    /// The member whose session a cookie names, if it is still good: not
    /// expired, and its account still enabled.
    /// Records the visit.
    pub async fn resume_session(
        &self,
        key: &SessionKey,
        policy: &SessionPolicy,
    ) -> Result<Option<Member>, ServiceError> {
        let digest = key.digest();
        let Some(session) = self.store.session(&digest).await? else {
            return Ok(None);
        };
        let now = Timestamp::now();
        if !policy.is_live(&session, now) {
            let mut tx = self.begin_write().await?;
            tx.delete_session(session.account_id, session.id).await?;
            tx.commit().await?;
            return Ok(None);
        }
        let account = match self.store.account(session.account_id).await? {
            Some(account) if rules::may_sign_in(&account).is_ok() => account,
            _ => {
                let mut tx = self.begin_write().await?;
                tx.end_sessions(session.account_id, None).await?;
                tx.commit().await?;
                return Ok(None);
            }
        };
        self.store.touch_session(&digest, now).await?;
        Ok(Some(Member::new(account, session, digest)))
    }

    pub async fn sign_out(&self, by: &Member) -> Result<(), ServiceError> {
        let session = by.session();
        let mut tx = self.begin_write().await?;
        tx.delete_session(session.account_id, session.id).await?;
        tx.commit().await?;
        tracing::info!(session = session.id.0, "signed out");
        Ok(())
    }

    /// Ends the session a cookie names, if it exists: a sign-in replaces
    /// whatever session the browser had.
    pub async fn forget_session(&self, key: &SessionKey) -> Result<(), ServiceError> {
        if let Some(session) = self.store.session(&key.digest()).await? {
            let mut tx = self.begin_write().await?;
            tx.delete_session(session.account_id, session.id).await?;
            tx.commit().await?;
            tracing::info!(session = session.id.0, "signed out");
        }
        Ok(())
    }

    pub async fn sessions(&self, by: &Member) -> Result<Vec<WebSession>, ServiceError> {
        Ok(self.store.sessions_of(by.account().id).await?)
    }

    /// Ends one of the member's own sessions; false if it had none by that id.
    pub async fn end_session(&self, by: &Member, id: SessionId) -> Result<bool, ServiceError> {
        let mut tx = self.begin_write().await?;
        let ended = tx.delete_session(by.account().id, id).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Ends every session of the member's account but this one; returns how many.
    pub async fn end_other_sessions(&self, by: &Member) -> Result<u64, ServiceError> {
        let mut tx = self.begin_write().await?;
        let ended = tx
            .end_sessions(by.account().id, Some(by.session_digest()))
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Notices belong to a session; its key is the proof.
    pub async fn set_notice(&self, key: &SessionKey, notice: &Notice) -> Result<(), ServiceError> {
        Ok(self.store.set_session_notice(&key.digest(), notice).await?)
    }

    pub async fn take_notice(&self, key: &SessionKey) -> Result<Notice, ServiceError> {
        Ok(self.store.take_session_notice(&key.digest()).await?)
    }
}
