//! Accounts: creating them, the first administrator, and looking them up.

use super::actor::Administrator;
use super::{parse_email, DeviceCaller, NewAccountRequest, Operator};
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
        let (password, generated) = self.new_password(request.password, &email)?;
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

    /// On a database without any account, creates the first administrator
    /// (admin and synchronisation) with a generated password, returned once
    /// so the operator can sign in. Nodes starting together make exactly
    /// one: the check and the insert share a transaction serialised with
    /// every change of who may administer, on any node.
    ///
    /// On a database that has accounts it creates nothing, even when none
    /// of them is an enabled administrator: someone disabled or demoted
    /// them, and a new administrator whose password lands in the journal at
    /// every such restart would be worse. It says how to repair that.
    pub async fn ensure_administrator(
        &self,
        by: &Operator,
        email: &str,
    ) -> Result<Option<(Account, MainPassword)>, ServiceError> {
        if self.store.has_accounts().await? {
            self.warn_without_administrator().await?;
            return Ok(None);
        }
        let email = parse_email(email)?;
        // Hashed before the lock is taken, so the lock is held only for the
        // check and the insert.
        let password = self.password_policy.generate(&email);
        let password_hash = self.hasher.hash(&password).await?;
        let mut tx = self.begin_admin_change().await?;
        if tx.has_accounts().await? {
            // Another node made it since the look above.
            return Ok(None);
        }
        let account = match tx
            .create_account(&NewAccount {
                email: email.clone(),
                name: "Administrator".to_owned(),
                password_hash,
                permissions: [Permission::Admin, Permission::Synchronisation]
                    .into_iter()
                    .collect(),
                created_at: Timestamp::now(),
            })
            .await
        {
            Ok(account) => account,
            // `latchkey user create`, which does not wait for the lock, made
            // that account at the same moment: there is one now.
            Err(StoreError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        tx.commit().await?;
        tracing::info!(by = %by.acting(), account = %account.email, "first administrator created");
        Ok(Some((account, password)))
    }

    /// Warns, with the command that repairs it, when no enabled account
    /// holds `admin`.
    async fn warn_without_administrator(&self) -> Result<(), ServiceError> {
        if self.store.has_admin().await? {
            return Ok(());
        }
        let accounts = self.store.accounts().await?;
        let disabled = accounts
            .iter()
            .find(|a| !a.enabled && a.permissions.contains(Permission::Admin));
        let fix = match disabled {
            Some(account) => format!("latchkey user enable --email {}", account.email),
            None => "latchkey user grant --email <EMAIL> --permission admin".to_owned(),
        };
        tracing::warn!(
            fix = %fix,
            "no enabled administrator, so nobody can administer this server in the web interface; none is created on a database that has accounts: repair it on the command line"
        );
        Ok(())
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
            .ok_or_else(|| ServiceError::AccountNotFound(format!("the ID {}", id.0)))
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
            None => Err(ServiceError::AccountNotFound(format!(
                "the email address {email}"
            ))),
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
