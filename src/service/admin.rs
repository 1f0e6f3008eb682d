//! Administration: permissions, enabling and disabling, main-password
//! resets. A signed-in administrator, and the operator unless forcing, is
//! held to the last-administrator rule, checked inside the change's own
//! transaction.

use std::collections::HashMap;

use super::actor::{Administrator, ApiAdministrator, DeviceActor};
use super::{Caller, Service, ServiceError};
use crate::credential::{MainPassword, Secret};
use crate::domain::{rules, Account, AccountId, Device, Permission};
use crate::store::{Serialise, WriteTx};

/// An account, and how many device passwords it has.
#[derive(Clone, Debug)]
pub struct AccountOverview {
    pub account: Account,
    pub devices: usize,
}

/// A device, and the account it belongs to.
#[derive(Clone, Debug)]
pub struct OwnedDevice {
    pub device: Device,
    pub owner: Account,
}

impl Service {
    /// The administrator a credential with the `admin` scope proves, for
    /// the admin API. The scope itself was checked by authentication, with
    /// the one check every route makes; a credential of any narrower scope
    /// is refused `insufficient_scope`.
    pub fn api_administrator(&self, caller: Caller) -> Result<ApiAdministrator, ServiceError> {
        Ok(match caller {
            Caller::Device(device) => ApiAdministrator::from_device(device)?,
            Caller::Access(access) => ApiAdministrator::from_access(access)?,
        })
    }

    /// Accounts whose email or name contains `query` (see [`Service::accounts`]),
    /// each with how many device passwords it has.
    pub async fn account_overviews(
        &self,
        by: &impl Administrator,
        query: &str,
    ) -> Result<Vec<AccountOverview>, ServiceError> {
        let accounts = self.accounts(by, query).await?;
        let mut counts: HashMap<AccountId, usize> = HashMap::new();
        for device in self.store.devices(None).await? {
            *counts.entry(device.account_id).or_default() += 1;
        }
        Ok(accounts
            .into_iter()
            .map(|account| AccountOverview {
                devices: counts.get(&account.id).copied().unwrap_or(0),
                account,
            })
            .collect())
    }

    /// One account, with how many device passwords it has.
    pub async fn account_overview(
        &self,
        _by: &impl Administrator,
        id: AccountId,
    ) -> Result<AccountOverview, ServiceError> {
        let account = self.account_unchecked(id).await?;
        let devices = self.store.devices(Some(id)).await?.len();
        Ok(AccountOverview { account, devices })
    }

    /// The devices the actor may see (see [`Service::devices`]), each with
    /// its owner; a device whose account went away in between is left out.
    pub async fn devices_with_owners(
        &self,
        by: &impl DeviceActor,
    ) -> Result<Vec<OwnedDevice>, ServiceError> {
        let devices = self.devices(by).await?;
        let owners: Vec<Account> = match by.owner() {
            Some(owner) => self.store.account(owner).await?.into_iter().collect(),
            None => self.store.accounts().await?,
        };
        let owners: HashMap<AccountId, Account> = owners.into_iter().map(|a| (a.id, a)).collect();
        Ok(devices
            .into_iter()
            .filter_map(|device| {
                let owner = owners.get(&device.account_id)?.clone();
                Some(OwnedDevice { device, owner })
            })
            .collect())
    }

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
        let mut tx = self.begin_admin_change().await?;
        let had = had_an_administrator(&mut tx, by).await?;
        tx.set_permission(target, permission, granted).await?;
        let committed = commit_keeping_an_administrator(tx, by, target, had).await;
        // Also after a failed commit: it may have happened all the same.
        self.cache.invalidate_account(target);
        committed?;
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
        let mut tx = self.begin_admin_change().await?;
        let had = had_an_administrator(&mut tx, by).await?;
        if !tx.set_enabled(target, enabled).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        if !enabled {
            tx.end_sessions(target, None).await?;
        }
        let committed = commit_keeping_an_administrator(tx, by, target, had).await;
        // Also after a failed commit: it may have happened all the same.
        self.cache.invalidate_account(target);
        committed?;
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
        let (password, generated) = self.new_password(password, &account.email)?;
        let hash = self.hasher.hash(&password).await?;
        let mut tx = self.begin_write().await?;
        if !tx.set_password_hash(target, &hash).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        tx.end_sessions(target, None).await?;
        tx.commit().await?;
        tracing::info!(by = %by.acting(), account = %account.email, "main password reset");
        Ok((account, generated.then_some(password)))
    }

    /// A change of who may administer (or the first administrator's
    /// creation). Serialised even for a forcing operator, who is not held to
    /// the rule: an administrator's check that ran beside the operator's
    /// change, unseen, could otherwise leave nobody.
    pub(super) async fn begin_admin_change(&self) -> Result<Box<dyn WriteTx>, ServiceError> {
        Ok(self.store.begin_write(Serialise::Administrators).await?)
    }

    /// Consecutive failed password attempts at the account from clients it
    /// has not signed in from before, and the cap at which they are stopped.
    pub async fn failed_sign_ins(
        &self,
        _by: &impl Administrator,
        target: AccountId,
    ) -> Result<(u32, u32), ServiceError> {
        let account = self.account_unchecked(target).await?;
        let failures = self
            .throttle
            .consecutive_failures(account.email.as_str())
            .await?;
        Ok((failures, self.throttle.config().consecutive_failures))
    }

    /// Forgets the account's failed password attempts, so that new browsers
    /// and apps may try again: an administrator's answer to an account whose
    /// consecutive-failure cap was reached.
    pub async fn clear_failed_sign_ins(
        &self,
        by: &impl Administrator,
        target: AccountId,
    ) -> Result<(), ServiceError> {
        let account = self.account_unchecked(target).await?;
        self.throttle.clear(account.email.as_str()).await?;
        tracing::info!(by = %by.acting(), account = %account.email, "failed sign-in attempts cleared");
        Ok(())
    }
}

/// Whether, before this transaction's writes, an enabled administrator
/// existed: the rule keeps the last one, it does not refuse every change on
/// a server that has none (which only the operator can work on). Asked only
/// for an actor held to the rule. First, an actor with an account must
/// still be an administrator as this transaction sees it: their right was
/// checked when they were authenticated, and another administrator's
/// change serialised before this one may have taken it away meanwhile.
async fn had_an_administrator(
    tx: &mut Box<dyn WriteTx>,
    by: &impl Administrator,
) -> Result<bool, ServiceError> {
    if let (Some(own), true) = (by.own_account(), by.keeps_an_administrator()) {
        match tx.standing(own).await? {
            Some((true, true)) => {}
            Some((true, false)) => return Err(ServiceError::NotAnAdministrator),
            // Disabled or deleted meanwhile: signed out, as their sessions are.
            Some((false, _)) | None => return Err(ServiceError::AccountDisabled),
        }
    }
    Ok(by.keeps_an_administrator() && tx.has_admin().await?)
}

/// Commits, unless the actor is held to the last-administrator rule and the
/// transaction's own writes took away the last enabled administrator there
/// was (`had`): then it rolls back and refuses.
async fn commit_keeping_an_administrator(
    mut tx: Box<dyn WriteTx>,
    by: &impl Administrator,
    target: AccountId,
    had: bool,
) -> Result<(), ServiceError> {
    if had {
        rules::keeps_an_administrator(tx.has_admin().await?)
            .map_err(|refusal| in_first_person(by, target, refusal))?;
    }
    Ok(tx.commit().await?)
}

impl Service {
    /// Deletes an account: every device password of it stops working on
    /// every node, its web sessions end, and it is gone from every list.
    /// The last enabled administrator cannot be deleted.
    pub async fn delete_account(
        &self,
        by: &impl Administrator,
        target: AccountId,
    ) -> Result<Account, ServiceError> {
        let account = self.account_unchecked(target).await?;
        let devices = self.store.devices(Some(target)).await?;
        let mut tx = self.begin_admin_change().await?;
        let had = had_an_administrator(&mut tx, by).await?;
        if !tx.delete_account(target).await? {
            return Err(ServiceError::AccountNotFound(format!(
                "the email address {}",
                account.email
            )));
        }
        let committed = commit_keeping_an_administrator(tx, by, target, had).await;
        self.cache.invalidate_account(target);
        committed?;
        for device in &devices {
            self.last_used.forget(&device.id);
        }
        tracing::info!(by = %by.acting(), account = %account.email, devices = devices.len(), "account deleted");
        Ok(account)
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
