//! Administration: permissions, enabling and disabling, main-password
//! resets. A signed-in administrator is held to the last-administrator rule
//! inside the write's own transaction; the operator is not.

use super::actor::Administrator;
use super::{parse_new_password, Service, ServiceError};
use crate::credential::{MainPassword, Secret};
use crate::domain::{rules, Account, AccountId, Permission};
use crate::store::AdminGuard;

impl Service {
    /// Grants or revokes a permission. Two administrators demoting
    /// themselves or each other at the same moment cannot both succeed.
    pub async fn set_permission(
        &self,
        by: &impl Administrator,
        target: AccountId,
        permission: Permission,
        granted: bool,
    ) -> Result<Account, ServiceError> {
        let account = self.account_unchecked(target).await?;
        let kept = self
            .store
            .set_permission(target, permission, granted, guard(by))
            .await?;
        self.cache.invalidate_account(target);
        rules::keeps_an_administrator(kept)
            .map_err(|refusal| in_first_person(by, target, refusal))?;
        tracing::info!(by = %by.acting(), account = %account.email, %permission, granted, "permission changed");
        self.account_unchecked(target).await
    }

    /// Disables or enables an account; disabling ends its web sessions in
    /// the same transaction, and its device passwords stop working at once.
    pub async fn set_enabled(
        &self,
        by: &impl Administrator,
        target: AccountId,
        enabled: bool,
    ) -> Result<Account, ServiceError> {
        let account = self.account_unchecked(target).await?;
        let kept = self.store.set_enabled(target, enabled, guard(by)).await?;
        self.cache.invalidate_account(target);
        rules::keeps_an_administrator(kept)
            .map_err(|refusal| in_first_person(by, target, refusal))?;
        tracing::info!(by = %by.acting(), account = %account.email, enabled, "account enabled state changed");
        self.account_unchecked(target).await
    }

    /// Sets a main password (generated when `password` is `None`, and then
    /// returned once) and signs the account out everywhere, in the same
    /// commit: whoever knew the old password may have signed in with it.
    /// Device passwords are untouched: that is the point of them.
    pub async fn reset_password(
        &self,
        by: &impl Administrator,
        target: AccountId,
        password: Option<Secret>,
    ) -> Result<(Account, Option<MainPassword>), ServiceError> {
        let account = self.account_unchecked(target).await?;
        let (password, generated) = match password {
            Some(raw) => (parse_new_password(raw)?, false),
            None => (MainPassword::generate(), true),
        };
        let hash = self.hasher.hash(&password).await?;
        self.store.set_password_hash(target, &hash, None).await?;
        tracing::info!(by = %by.acting(), account = %account.email, "main password reset");
        Ok((account, generated.then_some(password)))
    }
}

fn guard(by: &impl Administrator) -> AdminGuard {
    if by.keeps_an_administrator() {
        AdminGuard::KeepOne
    } else {
        AdminGuard::Unchecked
    }
}

/// The last-administrator refusal, told to the administrator who would
/// have locked themselves out.
fn in_first_person(
    by: &impl Administrator,
    target: AccountId,
    refusal: rules::Refusal,
) -> ServiceError {
    if refusal == rules::Refusal::LastAdministrator && by.own_account() == Some(target) {
        return ServiceError::invalid(
            "last_administrator",
            "You are the only enabled administrator. Make another account an administrator first, or nobody could administer this server.",
        );
    }
    refusal.into()
}
