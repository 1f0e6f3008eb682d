//! Administration by a signed-in administrator: the CLI's operations, plus
//! the rule that the last administrator cannot lock everyone out.

use super::{NewAccountRequest, Service};
use crate::credential::MainPassword;
use crate::domain::{Account, AccountId, Permission};
use crate::service::ServiceError;
use crate::store::AdminGuard;

impl Service {
    /// Accounts whose email or name contains `query` (case-insensitive).
    pub async fn search_accounts(&self, query: &str) -> Result<Vec<Account>, ServiceError> {
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
    ) -> Result<(Account, Option<MainPassword>), ServiceError> {
        let email = request.email.clone();
        let created = self.create_account(request).await?;
        tracing::info!(by = %actor.email, account = %email.trim(), "account created by an administrator");
        Ok(created)
    }

    /// An administrator's grant or revoke. No change may leave the server
    /// without an enabled administrator; the store checks that inside the
    /// write's transaction, so two administrators demoting themselves or
    /// each other at the same moment cannot both succeed.
    pub async fn set_permission_by(
        &self,
        actor: &Account,
        target: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<Account, ServiceError> {
        let account = self.account(target).await?;
        tracing::info!(by = %actor.email, account = %account.email, %permission, granted, "permission change by an administrator");
        self.change_permission(&account, permission, granted, AdminGuard::KeepOne)
            .await
            .map_err(|e| in_first_person(e, actor.id == target))
    }

    /// An administrator's disable or enable, under the same rule.
    pub async fn set_enabled_by(
        &self,
        actor: &Account,
        target: AccountId,
        enabled: bool,
    ) -> Result<Account, ServiceError> {
        let account = self.account(target).await?;
        tracing::info!(by = %actor.email, account = %account.email, enabled, "enabled state change by an administrator");
        self.change_enabled(&account, enabled, AdminGuard::KeepOne)
            .await
            .map_err(|e| in_first_person(e, actor.id == target))
    }

    /// Sets a main password (generated when `password` is `None`, and then
    /// returned once) and signs the account out everywhere.
    pub async fn reset_password(
        &self,
        actor: &Account,
        target: AccountId,
        password: Option<String>,
    ) -> Result<(Account, Option<MainPassword>), ServiceError> {
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
}

/// The last-administrator refusal, told to the administrator who would
/// have locked themselves out.
fn in_first_person(e: ServiceError, yourself: bool) -> ServiceError {
    match e {
        ServiceError::Invalid { code: "last_administrator", .. } if yourself => ServiceError::invalid(
            "last_administrator",
            "You are the only enabled administrator. Make another account an administrator first, or nobody could administer this server.",
        ),
        other => other,
    }
}
