//! Accounts: creating them, the first administrator, and looking them up.

use super::actor::Administrator;
use super::{parse_email, parse_new_password, DeviceCaller, NewAccountRequest, Operator};
use super::{Service, ServiceError};
use crate::credential::MainPassword;
use crate::domain::{Account, AccountId, DisplayName, Permission, Timestamp, WebSession};
use crate::store::{NewAccount, StoreError};

impl Service {
    /// Creates an account; returns the generated password when none was given.
    pub async fn create_account(
        &self,
        by: &impl Administrator,
        request: NewAccountRequest,
    ) -> Result<(Account, Option<MainPassword>), ServiceError> {
        let email = parse_email(&request.email)?;
        let name = match request.name.as_deref() {
            Some(name) => DisplayName::parse(name)
                .map_err(|e| ServiceError::invalid("invalid_name", e))?
                .to_string(),
            None => email.local_part().to_owned(),
        };
        let (password, generated) = match request.password {
            Some(raw) => (parse_new_password(raw)?, false),
            None => (MainPassword::generate(), true),
        };
        let password_hash = self.hasher.hash(&password).await?;
        let mut tx = self.begin_write().await?;
        let account = tx
            .create_account(&NewAccount {
                email: email.clone(),
                name,
                password_hash,
                permissions: request.permissions,
                created_at: Timestamp::now(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => ServiceError::EmailTaken(email.to_string()),
                other => other.into(),
            })?;
        tx.commit().await?;
        tracing::info!(by = %by.acting(), account = %account.email, "account created");
        Ok((account, generated.then_some(password)))
    }

    /// On a database without an enabled administrator, creates one with a
    /// generated password, returned once so the operator can sign in.
    pub async fn ensure_administrator(
        &self,
        by: &Operator,
        email: &str,
    ) -> Result<Option<(Account, MainPassword)>, ServiceError> {
        if self.store.has_admin().await? {
            return Ok(None);
        }
        let email = parse_email(email)?;
        if self.store.account_by_email(&email).await?.is_some() {
            // Someone disabled the last administrator, or took its admin right
            // away; taking over that account would be wrong, refusing to start
            // would be worse.
            tracing::warn!(
                account = %email,
                "no enabled administrator; enable one with `latchkey user enable` or `latchkey user grant --permission admin`"
            );
            return Ok(None);
        }
        let request = NewAccountRequest {
            email: email.to_string(),
            name: Some("Administrator".to_owned()),
            password: None,
            permissions: [Permission::Admin, Permission::Synchronisation]
                .into_iter()
                .collect(),
        };
        let (account, password) = self.create_account(by, request).await?;
        Ok(password.map(|p| (account, p)))
    }

    /// Any account, for whoever administers them.
    pub async fn account(
        &self,
        _by: &impl Administrator,
        id: AccountId,
    ) -> Result<Account, ServiceError> {
        self.account_unchecked(id).await
    }

    pub(super) async fn account_unchecked(&self, id: AccountId) -> Result<Account, ServiceError> {
        self.store
            .account(id)
            .await?
            .ok_or_else(|| ServiceError::AccountNotFound(format!("#{}", id.0)))
    }

    /// An account's live web sessions, newest sign-in first.
    pub async fn sessions_of(
        &self,
        _by: &impl Administrator,
        id: AccountId,
    ) -> Result<Vec<WebSession>, ServiceError> {
        let mut sessions = self.store.sessions_of(id).await?;
        sessions.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(sessions)
    }

    /// The account a device belongs to.
    pub async fn own_account(&self, caller: &DeviceCaller) -> Result<Account, ServiceError> {
        self.account_unchecked(caller.account_id()).await
    }

    pub async fn account_by_email(
        &self,
        _by: &impl Administrator,
        email: &str,
    ) -> Result<Account, ServiceError> {
        let email = parse_email(email)?;
        match self.store.account_by_email(&email).await? {
            Some((account, _)) => Ok(account),
            None => Err(ServiceError::AccountNotFound(email.to_string())),
        }
    }

    /// Accounts whose email or name contains `query` (case-insensitive);
    /// all of them for an empty query.
    pub async fn accounts(
        &self,
        _by: &impl Administrator,
        query: &str,
    ) -> Result<Vec<Account>, ServiceError> {
        let needle = query.trim().to_lowercase();
        let mut accounts = self.store.accounts().await?;
        if !needle.is_empty() {
            accounts.retain(|a| {
                a.email.as_str().contains(&needle) || a.name.to_lowercase().contains(&needle)
            });
        }
        Ok(accounts)
    }
}
