//! Administration: one account, its permissions, state, main password and
//! devices.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{main_password_shown_once, AccountRow};
use crate::credential::Secret;
use crate::domain::{Account, AccountId, Permission};
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, when, FieldErrors, Layout, WebError};
use crate::http::web::pages::devices::{DeviceRow, OpenDialog};
use crate::http::web::pages::{NoFields, PagePath};
use crate::http::web::session::AsAdmin;
use crate::http::AppState;
use crate::service::ServiceError;

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountRow,
    toggles: Vec<Toggle>,
    /// The permissions, and what they allow, in words.
    allows: String,
    /// The newest live session's sign-in, in words.
    last_sign_in: String,
    /// Consecutive failed password attempts from unknown clients.
    failed_sign_ins: u32,
    /// At which those are stopped.
    failure_cap: u32,
    is_self: bool,
    devices: Vec<DeviceRow>,
    may_regenerate: bool,
    action_base: String,
    password_rules: String,
    /// Where a dialog's Cancel goes: this page.
    back: String,
    open: OpenDialog,
    errors: FieldErrors,
}

/// A Grant or Revoke button.
struct Toggle {
    permission: &'static str,
    label: &'static str,
    granted: bool,
}

async fn account_page(
    state: &AppState,
    user: &AsAdmin,
    id: AccountId,
    layout: Layout,
) -> Result<AccountPage, WebError> {
    let account = state.service.account(user.actor(), id).await?;
    let devices: Vec<DeviceRow> = state
        .service
        .devices(&user.actor().over(id))
        .await?
        .into_iter()
        .map(|d| {
            let now = state.service.device_state(&d);
            DeviceRow::new(d, now)
        })
        .collect();
    let sessions = state.service.sessions_of(user.actor(), id).await?;
    let last_sign_in = match sessions.first() {
        Some(newest) => format!(
            "{} ({} web session{} open)",
            when(newest.created_at),
            sessions.len(),
            if sessions.len() == 1 { "" } else { "s" }
        ),
        None => "not signed in now (sign-ins are kept only while their session lasts)".to_owned(),
    };
    let (failed_sign_ins, failure_cap) = state.service.failed_sign_ins(user.actor(), id).await?;
    let toggles = Permission::ALL
        .into_iter()
        .map(|permission| Toggle {
            permission: permission.as_str(),
            label: match permission {
                Permission::Synchronisation => "Synchronisation",
                Permission::Admin => "Administrator",
            },
            granted: account.permissions.contains(permission),
        })
        .collect();
    Ok(AccountPage {
        layout,
        account: AccountRow::new(
            &account,
            devices.len(),
            state.service.two_factor_standing(&account),
        ),
        toggles,
        allows: allows(&account),
        last_sign_in,
        failed_sign_ins,
        failure_cap,
        is_self: account.id == user.account().id,
        devices,
        may_regenerate: false,
        action_base: format!("/admin/accounts/{}/devices", id.0),
        password_rules: state.service.password_policy().describe(),
        back: here(id.0),
        open: OpenDialog::default(),
        errors: FieldErrors::default(),
    })
}

pub async fn show(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath(id): PagePath<i64>,
) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    let page = account_page(&state, &user, AccountId(id), layout).await?;
    Ok(render(StatusCode::OK, &page))
}

fn here(id: i64) -> String {
    format!("/admin/accounts/{id}")
}

#[derive(Deserialize)]
pub struct PermissionForm {
    permission: String,
    granted: bool,
}

pub async fn set_permission(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, form): Form<AsAdmin, PermissionForm>,
) -> Result<Response, WebError> {
    let permission: Permission = form.permission.parse().map_err(|_| WebError::bad_form())?;
    let changed = state
        .service
        .set_permission(user.actor(), AccountId(id), permission, form.granted)
        .await;
    let gave_up_own_admin = changed.is_ok()
        && user.account().id.0 == id
        && permission == Permission::Admin
        && !form.granted;
    let flash = match changed {
        Ok(account) if form.granted => {
            format!("{} now has the {permission} permission.", account.email)
        }
        Ok(account) => format!(
            "{} no longer has the {permission} permission.",
            account.email
        ),
        Err(ServiceError::Invalid { message, .. }) => message,
        Err(e) => return Err(e.into()),
    };
    // Someone who just gave up their own admin right cannot see this page any more.
    let to = if gave_up_own_admin {
        "/settings/profile".to_owned()
    } else {
        here(id)
    };
    user.done(&state, flash, None, &to).await
}

#[derive(Deserialize)]
pub struct EnabledForm {
    enabled: bool,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, form): Form<AsAdmin, EnabledForm>,
) -> Result<Response, WebError> {
    let changed = state
        .service
        .set_enabled(user.actor(), AccountId(id), form.enabled)
        .await;
    let flash = match changed {
        Ok(account) if account.enabled => format!("{} is enabled.", account.email),
        Ok(account) => format!(
            "{} is disabled: its device passwords and web sessions no longer work.",
            account.email
        ),
        Err(ServiceError::Invalid { message, .. }) => message,
        Err(e) => return Err(e.into()),
    };
    user.done(&state, flash, None, &here(id)).await
}

pub async fn clear_failed_sign_ins(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, NoFields {}): Form<AsAdmin, NoFields>,
) -> Result<Response, WebError> {
    state
        .service
        .clear_failed_sign_ins(user.actor(), AccountId(id))
        .await?;
    let flash =
        "Failed sign-in attempts cleared: new browsers and apps may sign in to this account again."
            .to_owned();
    user.done(&state, flash, None, &here(id)).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: Secret,
}

pub async fn reset_password(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, form): Form<AsAdmin, ResetForm>,
) -> Result<Response, WebError> {
    if user.account().id.0 == id {
        // It would sign this very session out, and the new password with it.
        let flash = "To change your own main password, use Personal settings, Profile.";
        return user.done(&state, flash, None, &here(id)).await;
    }
    let password = Some(form.password).filter(|p| !p.is_empty());
    match state
        .service
        .reset_password(user.actor(), AccountId(id), password)
        .await
    {
        Ok((account, generated)) => {
            let reveal =
                generated.map(|password| main_password_shown_once("New", &account, &password));
            let flash = format!(
                "The main password of {} has been reset and all its web sessions signed out.",
                account.email
            );
            user.done(&state, flash, reveal, &here(id)).await
        }
        Err(ServiceError::Invalid { message, .. }) => {
            let mut page =
                account_page(&state, &user, AccountId(id), user.layout_without_notice()).await?;
            page.errors.add("password", message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

/// The account page with one device's Delete dialog open: that dialog's
/// own address, for browsers without the script.
pub async fn confirm_revoke_device(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath((id, device)): PagePath<(i64, String)>,
) -> Result<Response, WebError> {
    let mut page = account_page(&state, &user, AccountId(id), user.layout_without_notice()).await?;
    let device = state
        .service
        .device(&user.actor().over(AccountId(id)), &device)
        .await?;
    page.open = OpenDialog::row("delete", &device);
    Ok(render(StatusCode::OK, &page))
}

pub async fn revoke_device(
    State(state): State<AppState>,
    PagePath((id, device)): PagePath<(i64, String)>,
    Form(user, NoFields {}): Form<AsAdmin, NoFields>,
) -> Result<Response, WebError> {
    let device = state
        .service
        .delete_device(&user.actor().over(AccountId(id)), &device)
        .await?;
    let flash = format!(
        "“{}” has been deleted; its password no longer works.",
        device.name
    );
    user.done(&state, flash, None, &here(id)).await
}

/// What an account's permissions let it do, as the page says it.
fn allows(account: &Account) -> String {
    let sync = account.permissions.contains(Permission::Synchronisation);
    let admin = account.permissions.contains(Permission::Admin);
    match (sync, admin) {
        (true, true) => "Synchronisation and Administrator: may use device passwords and administer this server.",
        (true, false) => "Synchronisation: may use device passwords; cannot administer.",
        (false, true) => "Administrator: may administer this server; cannot use device passwords.",
        (false, false) => "None: cannot use device passwords or administer.",
    }
    .to_owned()
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

pub async fn delete_account(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, form): Form<AsAdmin, DeleteForm>,
) -> Result<Response, WebError> {
    if user.account().id.0 == id {
        let flash = "To delete your own account, ask another administrator.";
        return user.done(&state, flash, None, &here(id)).await;
    }
    let account = state.service.account(user.actor(), AccountId(id)).await?;
    if !form
        .confirm
        .trim()
        .eq_ignore_ascii_case(account.email.as_str())
    {
        let mut page =
            account_page(&state, &user, AccountId(id), user.layout_without_notice()).await?;
        page.errors.add(
            "confirm",
            format!(
                "Type {} to confirm that this account is to be deleted.",
                account.email
            ),
        );
        return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
    }
    match state
        .service
        .delete_account(user.actor(), AccountId(id))
        .await
    {
        Ok(account) => {
            let flash = format!(
                "Account {} deleted; its device passwords no longer work.",
                account.email
            );
            user.done(&state, flash, None, "/admin/accounts").await
        }
        Err(ServiceError::Invalid { message, .. }) => {
            user.done(&state, message, None, &here(id)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "admin/reset_two_factor.html")]
struct ResetTwoFactorPage {
    layout: Layout,
    id: i64,
    email: String,
}

/// The confirmation, on its own page (no script needed).
pub async fn confirm_reset_two_factor(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath(id): PagePath<i64>,
) -> Result<Response, WebError> {
    let account = state.service.account(user.actor(), AccountId(id)).await?;
    let page = ResetTwoFactorPage {
        layout: user.layout_without_notice(),
        id,
        email: account.email.to_string(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn reset_two_factor(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(user, NoFields {}): Form<AsAdmin, NoFields>,
) -> Result<Response, WebError> {
    let account = state
        .service
        .reset_two_factor(user.actor(), AccountId(id))
        .await?;
    let flash = format!(
        "Two-factor authentication of {} reset: they sign in with the main password alone and can turn it on again.",
        account.email
    );
    user.done(&state, flash, None, &here(id)).await
}
