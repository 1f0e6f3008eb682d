//! Administration: accounts, their permissions, main passwords and devices.
//! Every handler takes an [`Admin`]; the domain refuses what would leave
//! the server without an administrator.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::devices::DeviceRow;
use super::{NoFields, PagePath};
use crate::domain::{Account, AccountId, DomainError, NewAccountRequest, Permission, Permissions};
use crate::http::AppState;
use crate::web::csrf::Form;
use crate::web::page::{render, when, FieldErrors, Layout, WebError};
use crate::web::reveal::{Reveal, RevealItem};
use crate::web::session::Admin;

/// An account as the admin pages show it.
struct AccountRow {
    id: i64,
    email: String,
    name: String,
    permissions: String,
    synchronisation: bool,
    admin: bool,
    two_factor: bool,
    enabled: bool,
    created: String,
    devices: usize,
}

impl AccountRow {
    fn new(account: &Account, devices: usize) -> Self {
        let permissions: Vec<&str> = account.permissions.iter().map(Permission::as_str).collect();
        Self {
            id: account.id.0,
            email: account.email.to_string(),
            name: account.name.clone(),
            permissions: permissions.join(", "),
            synchronisation: account.permissions.contains(Permission::Synchronisation),
            admin: account.permissions.contains(Permission::Admin),
            two_factor: account.two_factor_enabled,
            enabled: account.enabled,
            created: when(account.created_at),
            devices,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    layout: Layout,
    query: String,
    accounts: Vec<AccountRow>,
}

#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

pub async fn list(
    State(state): State<AppState>,
    Admin(user): Admin,
    Query(search): Query<Search>,
) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    let accounts = state.service.search_accounts(&search.q).await?;
    let mut counts: HashMap<AccountId, usize> = HashMap::new();
    for device in state.service.devices(None).await? {
        *counts.entry(device.account_id).or_default() += 1;
    }
    let accounts = accounts
        .iter()
        .map(|a| AccountRow::new(a, counts.get(&a.id).copied().unwrap_or(0)))
        .collect();
    Ok(render(
        StatusCode::OK,
        &AccountsPage {
            layout,
            query: search.q,
            accounts,
        },
    ))
}

#[derive(Template)]
#[template(path = "admin/new_account.html")]
struct NewAccountPage {
    layout: Layout,
    email: String,
    name: String,
    synchronisation: bool,
    admin: bool,
    errors: FieldErrors,
}

pub async fn new_account(
    State(state): State<AppState>,
    Admin(user): Admin,
) -> Result<Response, WebError> {
    let page = NewAccountPage {
        layout: user.layout(&state).await?,
        email: String::new(),
        name: String::new(),
        synchronisation: true,
        admin: false,
        errors: FieldErrors::default(),
    };
    Ok(render(StatusCode::OK, &page))
}

#[derive(Deserialize)]
pub struct NewAccountForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    /// Checkboxes: present when ticked.
    synchronisation: Option<String>,
    admin: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Form(Admin(user), form): Form<Admin, NewAccountForm>,
) -> Result<Response, WebError> {
    let mut permissions = Permissions::default();
    if form.synchronisation.is_some() {
        permissions.insert(Permission::Synchronisation);
    }
    if form.admin.is_some() {
        permissions.insert(Permission::Admin);
    }
    let request = NewAccountRequest {
        email: form.email.clone(),
        name: Some(form.name.trim())
            .filter(|n| !n.is_empty())
            .map(str::to_owned),
        password: Some(form.password).filter(|p| !p.is_empty()),
        permissions,
    };
    let mut errors = FieldErrors::default();
    match state
        .service
        .create_account_by(&user.account, request)
        .await
    {
        Ok((account, generated)) => {
            let reveal = generated.map(|password| Reveal {
                title: format!("First main password for {}", account.email),
                items: vec![
                    RevealItem::new("shown-email", "Email address", account.email.to_string()),
                    RevealItem::new("shown-password", "Main password", password.expose()),
                ],
            });
            let flash = format!("Account {} created.", account.email);
            let to = format!("/admin/accounts/{}", account.id.0);
            return user.done(&state, flash, reveal, &to).await;
        }
        Err(DomainError::Invalid { code, message }) => {
            let field = match code {
                "invalid_name" => "name",
                "invalid_password" => "password",
                _ => "email",
            };
            errors.add(field, message);
        }
        Err(e @ DomainError::EmailTaken(_)) => errors.add("email", e.to_string()),
        Err(e) => return Err(e.into()),
    }
    let page = NewAccountPage {
        layout: user.layout_without_notice(),
        email: form.email,
        name: form.name,
        synchronisation: form.synchronisation.is_some(),
        admin: form.admin.is_some(),
        errors,
    };
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}

#[derive(Template)]
#[template(path = "admin/account.html")]
struct AccountPage {
    layout: Layout,
    account: AccountRow,
    is_self: bool,
    devices: Vec<DeviceRow>,
    may_regenerate: bool,
    action_base: String,
    errors: FieldErrors,
}

async fn account_page(
    state: &AppState,
    user: &crate::web::session::SignedIn,
    id: AccountId,
    layout: Layout,
) -> Result<AccountPage, WebError> {
    let account = state.service.account(id).await?;
    let devices: Vec<DeviceRow> = state
        .service
        .devices(Some(id))
        .await?
        .into_iter()
        .map(DeviceRow::from)
        .collect();
    Ok(AccountPage {
        layout,
        account: AccountRow::new(&account, devices.len()),
        is_self: account.id == user.account.id,
        devices,
        may_regenerate: false,
        action_base: format!("/admin/accounts/{}/devices", id.0),
        errors: FieldErrors::default(),
    })
}

pub async fn show(
    State(state): State<AppState>,
    Admin(user): Admin,
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
    Form(Admin(user), form): Form<Admin, PermissionForm>,
) -> Result<Response, WebError> {
    let permission: Permission = form.permission.parse().map_err(|_| WebError::bad_form())?;
    let changed = state
        .service
        .set_permission_by(&user.account, AccountId(id), permission, form.granted)
        .await;
    let flash = match changed {
        Ok(account) if form.granted => {
            format!("{} now has the {permission} permission.", account.email)
        }
        Ok(account) => format!(
            "{} no longer has the {permission} permission.",
            account.email
        ),
        Err(DomainError::Invalid { message, .. }) => message,
        Err(e) => return Err(e.into()),
    };
    // Someone who just gave up their own admin right cannot see this page any more.
    let to = if user.account.id.0 == id && permission == Permission::Admin && !form.granted {
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
    Form(Admin(user), form): Form<Admin, EnabledForm>,
) -> Result<Response, WebError> {
    let changed = state
        .service
        .set_enabled_by(&user.account, AccountId(id), form.enabled)
        .await;
    let flash = match changed {
        Ok(account) if account.enabled => format!("{} is enabled.", account.email),
        Ok(account) => format!(
            "{} is disabled: its device passwords and web sessions no longer work.",
            account.email
        ),
        Err(DomainError::Invalid { message, .. }) => message,
        Err(e) => return Err(e.into()),
    };
    user.done(&state, flash, None, &here(id)).await
}

#[derive(Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    password: String,
}

pub async fn reset_password(
    State(state): State<AppState>,
    PagePath(id): PagePath<i64>,
    Form(Admin(user), form): Form<Admin, ResetForm>,
) -> Result<Response, WebError> {
    if user.account.id.0 == id {
        // It would sign this very session out, and the new password with it.
        let flash = "To change your own main password, use Personal settings, Profile.";
        return user.done(&state, flash, None, &here(id)).await;
    }
    let password = Some(form.password).filter(|p| !p.is_empty());
    match state.service.reset_password(AccountId(id), password).await {
        Ok((account, generated)) => {
            let reveal = generated.map(|password| Reveal {
                title: format!("New main password for {}", account.email),
                items: vec![
                    RevealItem::new("shown-email", "Email address", account.email.to_string()),
                    RevealItem::new("shown-password", "Main password", password.expose()),
                ],
            });
            let flash = format!(
                "The main password of {} has been reset and all its web sessions signed out.",
                account.email
            );
            user.done(&state, flash, reveal, &here(id)).await
        }
        Err(DomainError::Invalid { message, .. }) => {
            let mut page =
                account_page(&state, &user, AccountId(id), user.layout_without_notice()).await?;
            page.errors.add("password", message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_device(
    State(state): State<AppState>,
    PagePath((id, device)): PagePath<(i64, String)>,
    Form(Admin(user), NoFields {}): Form<Admin, NoFields>,
) -> Result<Response, WebError> {
    let device = state
        .service
        .delete_device_of(AccountId(id), &device)
        .await?;
    let flash = format!(
        "“{}” has been deleted; its password no longer works.",
        device.name
    );
    user.done(&state, flash, None, &here(id)).await
}
