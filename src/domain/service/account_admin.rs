//! Administration by a signed-in administrator: the CLI's operations, plus
//! the rule that the last administrator cannot lock everyone out.

use super::{NewAccountRequest, Service};
use crate::credential::MainPassword;
use crate::domain::{Account, AccountId, DomainError, Permission};

impl Service {
    /// Accounts whose email or name contains `query` (case-insensitive).
    pub async fn search_accounts(&self, query: &str) -> Result<Vec<Account>, DomainError> {
        let needle = query.trim().to_lowercase();
        let mut accounts = self.accounts().await?;
        if !needle.is_empty() {
            accounts.retain(|a| {
                a.email.as_str().contains(&needle) || a.name.to_lowercase().contains(&needle)
            });
        }
        Ok(accounts)
    }

    pub async fn create_account_by(
        &self,
        actor: &Account,
        request: NewAccountRequest,
    ) -> Result<(Account, Option<MainPassword>), DomainError> {
        let email = request.email.clone();
        let created = self.create_account(request).await?;
        tracing::info!(by = %actor.email, account = %email.trim(), "account created by an administrator");
        Ok(created)
    }

    pub async fn set_permission_by(
        &self,
        actor: &Account,
        target: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<Account, DomainError> {
        let account = self.account(target).await?;
        if actor.id == target && permission == Permission::Admin && !granted {
            self.ensure_other_admin(actor).await?;
        }
        tracing::info!(by = %actor.email, account = %account.email, %permission, granted, "permission change by an administrator");
        self.set_permission(account.email.as_str(), permission, granted)
            .await
    }

    pub async fn set_enabled_by(
        &self,
        actor: &Account,
        target: AccountId,
        enabled: bool,
    ) -> Result<Account, DomainError> {
        let account = self.account(target).await?;
        if actor.id == target && !enabled {
            self.ensure_other_admin(actor).await?;
        }
        tracing::info!(by = %actor.email, account = %account.email, enabled, "enabled state change by an administrator");
        self.set_enabled(account.email.as_str(), enabled).await
    }

    /// Sets a main password (generated when `password` is `None`, and then
    /// returned once) and signs the account out everywhere.
    pub async fn reset_password(
        &self,
        actor: &Account,
        target: AccountId,
        password: Option<String>,
    ) -> Result<(Account, Option<MainPassword>), DomainError> {
        let account = self.account(target).await?;
        tracing::info!(by = %actor.email, account = %account.email, "main password reset by an administrator");
        let (raw, generated) = match password {
            Some(password) => (password, None),
            None => {
                let generated = MainPassword::generate();
                (generated.expose().to_owned(), Some(generated))
            }
        };
        self.set_password(account.email.as_str(), raw).await?;
        Ok((account, generated))
    }

    async fn ensure_other_admin(&self, actor: &Account) -> Result<(), DomainError> {
        let others =
            self.accounts().await?.into_iter().any(|a| {
                a.id != actor.id && a.enabled && a.permissions.contains(Permission::Admin)
            });
        if others {
            Ok(())
        } else {
            Err(DomainError::invalid(
                "last_administrator",
                "You are the only enabled administrator. Make another account an administrator first, or nobody could administer this server.",
            ))
        }
    }
}
