//! Administration: the list of accounts, and new accounts.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{main_password_shown_once, AccountRow};
use crate::credential::Secret;
use crate::domain::{AccountId, Permission, Permissions};
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, FieldErrors, Layout, WebError};
use crate::http::web::session::AsAdmin;
use crate::http::AppState;
use crate::service::{NewAccountRequest, ServiceError};

#[derive(Template)]
#[template(path = "admin/accounts.html")]
struct AccountsPage {
    layout: Layout,
    tab: &'static str,
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
    user: AsAdmin,
    Query(search): Query<Search>,
) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    let accounts = state.service.accounts(user.actor(), &search.q).await?;
    let mut counts: HashMap<AccountId, usize> = HashMap::new();
    for device in state.service.devices(&user.actor().everyone()).await? {
        *counts.entry(device.account_id).or_default() += 1;
    }
    let accounts = accounts
        .iter()
        .map(|a| {
            AccountRow::new(
                a,
                counts.get(&a.id).copied().unwrap_or(0),
                state.service.two_factor_standing(a),
            )
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &AccountsPage {
            layout,
            tab: "accounts",
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
    password_rules: String,
    errors: FieldErrors,
}

pub async fn new_account(
    State(state): State<AppState>,
    user: AsAdmin,
) -> Result<Response, WebError> {
    let page = NewAccountPage {
        layout: user.layout(&state).await?,
        email: String::new(),
        name: String::new(),
        synchronisation: true,
        admin: false,
        password_rules: state.service.password_policy().describe(),
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
    password: Secret,
    /// Checkboxes: present when ticked.
    synchronisation: Option<String>,
    admin: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Form(user, form): Form<AsAdmin, NewAccountForm>,
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
    match state.service.create_account(user.actor(), request).await {
        Ok((account, generated)) => {
            let reveal =
                generated.map(|password| main_password_shown_once("First", &account, &password));
            let flash = format!("Account {} created.", account.email);
            let to = format!("/admin/accounts/{}", account.id.0);
            return user.done(&state, flash, reveal, &to).await;
        }
        Err(ServiceError::Invalid { code, message }) => {
            let field = match code {
                "invalid_name" => "name",
                code if code.starts_with("password_") => "password",
                _ => "email",
            };
            errors.add(field, message);
        }
        Err(e @ ServiceError::EmailTaken(_)) => errors.add("email", e.to_string()),
        Err(e) => return Err(e.into()),
    }
    let page = NewAccountPage {
        layout: user.layout_without_notice(),
        email: form.email,
        name: form.name,
        synchronisation: form.synchronisation.is_some(),
        admin: form.admin.is_some(),
        password_rules: state.service.password_policy().describe(),
        errors,
    };
    Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
}
