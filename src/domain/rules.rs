//! The rules every path (API, web, CLI) applies, each in one pure function.
//! Callers turn a [`Refusal`] into their own answer; none restates a rule.

use super::{Account, Permission, Permissions, Scope};

/// Why a rule says no.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    AccountDisabled,
    TwoFactorEnabled,
    PermissionMissing(Permission),
    NotAnAdministrator,
    LastAdministrator,
    /// The credential's scope does not cover the request; it needs this one.
    InsufficientScope(Scope),
    /// Past its expiry, or unused for longer than its idle expiry.
    CredentialExpired,
    /// Valid longer than `--max-credential-lifetime-days` (this many) allows.
    LifetimeExceeded(u32),
    /// The client's address is outside the credential's networks.
    AddressNotAllowed,
}

/// Device passwords, for authenticating and for managing them, need the
/// `synchronisation` permission.
pub fn may_use_device_passwords(permissions: &Permissions) -> Result<(), Refusal> {
    if permissions.contains(Permission::Synchronisation) {
        Ok(())
    } else {
        Err(Refusal::PermissionMissing(Permission::Synchronisation))
    }
}

/// Whether an email and main password alone are enough to act for this
/// account (the password route; a web sign-in asks for the second factor
/// instead): not when it is disabled, nor when it also wants a second factor.
pub fn password_alone_may_act_for(account: &Account) -> Result<(), Refusal> {
    if !account.enabled {
        return Err(Refusal::AccountDisabled);
    }
    if account.two_factor_enabled {
        return Err(Refusal::TwoFactorEnabled);
    }
    Ok(())
}

/// Whether a person may sign in to the web interface (with a second step
/// when the account has two-factor authentication) or carry on a session.
pub fn may_sign_in(account: &Account) -> Result<(), Refusal> {
    if !account.enabled {
        return Err(Refusal::AccountDisabled);
    }
    Ok(())
}

/// Who may administer: an enabled account with the `admin` permission. The
/// store's `has_admin` counts administrators with the same predicate.
pub fn is_administrator(account: &Account) -> Result<(), Refusal> {
    if account.enabled && account.permissions.contains(Permission::Admin) {
        Ok(())
    } else {
        Err(Refusal::NotAnAdministrator)
    }
}

/// The last-administrator rule: a change may stand only if an enabled
/// administrator remains after it. Whether one does must be seen inside the
/// change's own transaction, or two changes at once could each see the other
/// administrator and leave none.
pub fn keeps_an_administrator(administrator_remains: bool) -> Result<(), Refusal> {
    if administrator_remains {
        Ok(())
    } else {
        Err(Refusal::LastAdministrator)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AccountId, Email, Timestamp};

    fn account(permissions: &[Permission], enabled: bool, two_factor: bool) -> Account {
        Account {
            id: AccountId(1),
            email: Email::parse("ann@example.com").expect("valid email"),
            name: "Ann".to_owned(),
            permissions: permissions.iter().copied().collect(),
            enabled,
            two_factor_enabled: two_factor,
            created_at: Timestamp::now(),
        }
    }

    #[test]
    fn device_passwords_need_synchronisation() {
        let with: Permissions = [Permission::Synchronisation].into_iter().collect();
        let admin_only: Permissions = [Permission::Admin].into_iter().collect();
        assert_eq!(may_use_device_passwords(&with), Ok(()));
        assert_eq!(
            may_use_device_passwords(&admin_only),
            Err(Refusal::PermissionMissing(Permission::Synchronisation))
        );
        assert!(may_use_device_passwords(&Permissions::default()).is_err());
    }

    #[test]
    fn a_password_alone_acts_only_for_enabled_accounts_without_a_second_factor() {
        assert_eq!(
            password_alone_may_act_for(&account(&[], true, false)),
            Ok(())
        );
        assert_eq!(
            password_alone_may_act_for(&account(&[], false, false)),
            Err(Refusal::AccountDisabled)
        );
        assert_eq!(
            password_alone_may_act_for(&account(&[], true, true)),
            Err(Refusal::TwoFactorEnabled)
        );
        // Disabled wins: it is what the person can do something about first.
        assert_eq!(
            password_alone_may_act_for(&account(&[], false, true)),
            Err(Refusal::AccountDisabled)
        );
    }

    #[test]
    fn administrators_are_enabled_accounts_with_the_admin_permission() {
        assert_eq!(
            is_administrator(&account(&[Permission::Admin], true, false)),
            Ok(())
        );
        assert_eq!(
            is_administrator(&account(&[Permission::Admin], false, false)),
            Err(Refusal::NotAnAdministrator)
        );
        assert_eq!(
            is_administrator(&account(&[Permission::Synchronisation], true, false)),
            Err(Refusal::NotAnAdministrator)
        );
    }

    #[test]
    fn no_change_may_leave_the_server_without_an_administrator() {
        assert_eq!(keeps_an_administrator(true), Ok(()));
        assert_eq!(
            keeps_an_administrator(false),
            Err(Refusal::LastAdministrator)
        );
    }
}
