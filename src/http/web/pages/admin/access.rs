//! Administration, API access: credentials of services that belong to no
//! person (the article's time-clocking terminal). List, create, regenerate
//! the token, disable or enable, edit limits, end an old token, delete.
//!
//! As on the Devices tab, each dialog also has its own address (GET), which
//! answers with the page and that dialog already open, for browsers
//! without the script.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use crate::credential::Token;
use crate::domain::{AccessAuthorisation, RequestedLimits, Scope, Timestamp};
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, when, FieldErrors, Layout, WebError};
use crate::http::web::pages::{NoFields, PagePath};
use crate::http::web::reveal::{CredentialShown, Reveal};
use crate::http::web::session::AsAdmin;
use crate::http::AppState;
use crate::service::{
    parse_limits, DeviceState, NewAccessRequest, RawLimits, ServiceError, TokenChange,
};

const HERE: &str = "/admin/access";

#[derive(Template)]
#[template(path = "admin/access.html")]
struct AccessPage {
    layout: Layout,
    tab: &'static str,
    rows: Vec<AccessRow>,
    /// The create dialog's fields as last sent (kept after an error).
    new: LimitsForm,
    new_name: String,
    new_description: String,
    errors: FieldErrors,
    /// The dialog that arrives open: `new`, or `regen-`, `limits-`, `delete-` and an id.
    open: String,
}

impl AccessPage {
    /// Whether this dialog arrives open: `kind` alone for the create
    /// dialog (`id` empty), else a row's.
    fn is_open(&self, kind: &str, id: &str) -> bool {
        match self.open.strip_prefix(kind) {
            Some("") => id.is_empty(),
            Some(rest) => !id.is_empty() && rest.strip_prefix('-') == Some(id),
            None => false,
        }
    }

    /// An error of the open dialog's field; other dialogs show none.
    fn error_in(&self, kind: &str, id: &str, field: &str) -> Option<&str> {
        if self.is_open(kind, id) {
            self.errors.of(field)
        } else {
            None
        }
    }
}

/// One API access authorisation as the page shows it.
struct AccessRow {
    id: String,
    name: String,
    description: String,
    /// `active`, `disabled` or `expired`.
    state: &'static str,
    enabled: bool,
    scope: &'static str,
    expires: Option<String>,
    idle_days: Option<u32>,
    allowed: String,
    denied: String,
    created_by: String,
    created: String,
    last_used: Option<String>,
    last_address: Option<String>,
    last_user_agent: Option<String>,
    /// The last distinct addresses, newest first, comma-separated.
    recent: Option<String>,
    previous_until: Option<String>,
    /// What the Edit limits dialog starts with.
    form: LimitsForm,
}

fn nets(list: &[ipnet::IpNet]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The date an `<input type="date">` shows for an expiry: the last day it
/// is valid through, so saving it unchanged keeps that day.
fn as_date(at: Timestamp) -> String {
    let last = Timestamp::from_millis(at.millis() - 1).to_rfc3339();
    last.get(..10).unwrap_or_default().to_owned()
}

impl AccessRow {
    fn new(access: AccessAuthorisation, state: DeviceState) -> Self {
        let limits = &access.limits;
        let last = access.last_used.as_ref();
        let recent: Vec<String> = last
            .map(|u| u.recent.iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default();
        Self {
            id: access.id.to_string(),
            name: access.name.to_string(),
            state: match (access.enabled, state.expired) {
                (false, _) => "disabled",
                (true, true) => "expired",
                (true, false) => "active",
            },
            enabled: access.enabled,
            scope: limits.scope.as_str(),
            expires: limits.expires_at.map(when),
            idle_days: limits.idle_expiry_days,
            allowed: nets(&limits.allowed_networks),
            denied: nets(&limits.denied_networks),
            created_by: access
                .created_by
                .clone()
                .unwrap_or_else(|| "the command line".to_owned()),
            created: when(access.created_at),
            last_used: last.map(|u| when(u.at)),
            last_address: last.and_then(|u| u.ip).map(|ip| ip.to_string()),
            last_user_agent: last.and_then(|u| u.user_agent.as_deref().map(str::to_owned)),
            recent: (!recent.is_empty()).then(|| recent.join(", ")),
            previous_until: state.previous_token_until.map(when),
            form: LimitsForm {
                scope: limits.scope.as_str().to_owned(),
                expires: limits.expires_at.map(as_date).unwrap_or_default(),
                expires_was: limits
                    .expires_at
                    .map(Timestamp::to_rfc3339)
                    .unwrap_or_default(),
                idle_days: limits
                    .idle_expiry_days
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                allowed_networks: nets(&limits.allowed_networks),
                denied_networks: nets(&limits.denied_networks),
            },
            description: access.description,
        }
    }
}

/// The dialog after Create or Regenerate token: what to give the service.
fn shown_once(access: &AccessAuthorisation, token: &Token) -> Reveal {
    CredentialShown {
        title: format!("API access “{}”", access.name),
        id: ("shown-access-id", "ID", access.id.as_str()),
        token: ("shown-token", "Token", token),
    }
    .into()
}

async fn page(state: &AppState, user: &AsAdmin, layout: Layout) -> Result<AccessPage, WebError> {
    let rows = state
        .service
        .accesses(user.actor())
        .await?
        .into_iter()
        .map(|a| {
            let now = state.service.access_state(&a);
            AccessRow::new(a, now)
        })
        .collect();
    Ok(AccessPage {
        layout,
        tab: "access",
        rows,
        new: LimitsForm {
            scope: Scope::Full.as_str().to_owned(),
            ..LimitsForm::default()
        },
        new_name: String::new(),
        new_description: String::new(),
        errors: FieldErrors::default(),
        open: String::new(),
    })
}

pub async fn list(State(state): State<AppState>, user: AsAdmin) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    Ok(render(StatusCode::OK, &page(&state, &user, layout).await?))
}

/// The page with one dialog open. What is left to show once waits for the
/// page itself, so two dialogs never arrive open together.
async fn with_dialog(
    state: &AppState,
    user: &AsAdmin,
    open: String,
    status: StatusCode,
    adjust: impl FnOnce(&mut AccessPage),
) -> Result<Response, WebError> {
    let mut page = page(state, user, user.layout_without_notice()).await?;
    page.open = open;
    adjust(&mut page);
    Ok(render(status, &page))
}

pub async fn show_new(State(state): State<AppState>, user: AsAdmin) -> Result<Response, WebError> {
    with_dialog(&state, &user, "new".to_owned(), StatusCode::OK, |_| {}).await
}

/// A row's dialog at its own address; an unknown id is a page that does not exist.
async fn row_dialog(
    state: &AppState,
    user: &AsAdmin,
    kind: &str,
    id: &str,
) -> Result<Response, WebError> {
    let access = state.service.access(user.actor(), id).await?;
    let open = format!("{kind}-{}", access.id);
    with_dialog(state, user, open, StatusCode::OK, |_| {}).await
}

pub async fn confirm_regenerate(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath(id): PagePath<String>,
) -> Result<Response, WebError> {
    row_dialog(&state, &user, "regen", &id).await
}

pub async fn edit_limits(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath(id): PagePath<String>,
) -> Result<Response, WebError> {
    row_dialog(&state, &user, "limits", &id).await
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    user: AsAdmin,
    PagePath(id): PagePath<String>,
) -> Result<Response, WebError> {
    row_dialog(&state, &user, "delete", &id).await
}

/// The limit fields of the create and Edit limits dialogs, as sent.
#[derive(Clone, Default, Deserialize)]
pub struct LimitsForm {
    #[serde(default)]
    scope: String,
    /// A date, valid through that day (UTC).
    #[serde(default)]
    expires: String,
    /// The exact expiry the Edit limits dialog started with, kept when the
    /// date was left as shown (a date alone would move it to the day's end).
    #[serde(default)]
    expires_was: String,
    #[serde(default)]
    idle_days: String,
    #[serde(default)]
    allowed_networks: String,
    #[serde(default)]
    denied_networks: String,
}

/// A field and what is wrong with it.
type FieldError = (&'static str, String);

fn invalid(field: &'static str, e: ServiceError) -> FieldError {
    (field, e.to_string())
}

impl LimitsForm {
    /// Parsed one field at a time, so an error is shown next to its field.
    fn parse(&self) -> Result<RequestedLimits, FieldError> {
        let one = |raw: RawLimits, field| parse_limits(raw).map_err(|e| invalid(field, e));
        let scope = one(
            RawLimits {
                scope: Some(self.scope.clone()),
                ..RawLimits::default()
            },
            "scope",
        )?
        .scope;
        let was = Timestamp::parse_rfc3339(&self.expires_was);
        let expires = match was {
            Some(at) if as_date(at) == self.expires.trim() => self.expires_was.clone(),
            _ => self.expires.clone(),
        };
        let expires_at = one(
            RawLimits {
                expires_at: Some(expires),
                ..RawLimits::default()
            },
            "expires",
        )?
        .expires_at;
        let idle_expiry_days = match self.idle_days.trim() {
            "" => None,
            raw => Some(raw.parse::<u32>().map_err(|_| {
                (
                    "idle_days",
                    "The idle expiry must be a number of days.".to_owned(),
                )
            })?),
        };
        let allowed_networks = one(
            RawLimits {
                allowed_networks: vec![self.allowed_networks.clone()],
                ..RawLimits::default()
            },
            "allowed_networks",
        )?
        .allowed_networks;
        let denied_networks = one(
            RawLimits {
                denied_networks: vec![self.denied_networks.clone()],
                ..RawLimits::default()
            },
            "denied_networks",
        )?
        .denied_networks;
        Ok(RequestedLimits {
            scope,
            expires_at,
            idle_expiry_days,
            allowed_networks,
            denied_networks,
        })
    }
}

/// The field a refusal of the service is about.
fn field_of(code: &str) -> &'static str {
    match code {
        "invalid_device_name" => "name",
        "invalid_description" => "description",
        "invalid_scope" | "scope_not_allowed" => "scope",
        "invalid_idle_expiry" => "idle_days",
        "invalid_network" | "too_many_networks" => "allowed_networks",
        "invalid_grace" => "grace_seconds",
        _ => "expires",
    }
}

/// Splits a service answer into success, a form error, or an error page.
fn form_error<T>(result: Result<T, ServiceError>) -> Result<Result<T, FieldError>, WebError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(ServiceError::Invalid { code, message }) => Ok(Err((field_of(code), message))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct NewAccessForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(flatten)]
    limits: LimitsForm,
}

pub async fn create(
    State(state): State<AppState>,
    Form(user, form): Form<AsAdmin, NewAccessForm>,
) -> Result<Response, WebError> {
    let created = match form.limits.parse() {
        Ok(limits) => {
            let request = NewAccessRequest {
                name: form.name.clone(),
                description: form.description.clone(),
                limits,
            };
            form_error(state.service.create_access(user.actor(), request).await)?
        }
        Err(e) => Err(e),
    };
    match created {
        Ok((access, token)) => {
            let flash = format!("API access “{}” created.", access.name);
            let reveal = shown_once(&access, &token);
            user.done(&state, flash, Some(reveal), HERE).await
        }
        Err((field, message)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            with_dialog(&state, &user, "new".to_owned(), status, |page| {
                page.new_name = form.name;
                page.new_description = form.description;
                page.new = form.limits;
                page.errors.add(field, message);
            })
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct RegenerateForm {
    #[serde(default)]
    grace_seconds: String,
    #[serde(default)]
    expires: String,
}

pub async fn regenerate(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, form): Form<AsAdmin, RegenerateForm>,
) -> Result<Response, WebError> {
    let change = match form.grace_seconds.trim() {
        "" => Ok(0),
        raw => raw.parse::<u32>().map_err(|_| {
            (
                "grace_seconds",
                "The grace period must be a number of seconds.".to_owned(),
            )
        }),
    }
    .and_then(|grace_seconds| {
        let expires_at = parse_limits(RawLimits {
            expires_at: Some(form.expires),
            ..RawLimits::default()
        })
        .map_err(|e| invalid("expires", e))?
        .expires_at;
        Ok(TokenChange {
            grace_seconds,
            expires_at,
        })
    });
    let regenerated = match change {
        Ok(change) => form_error(
            state
                .service
                .regenerate_access_token(user.actor(), &id, change)
                .await,
        )?,
        Err(e) => Err(e),
    };
    match regenerated {
        Ok((access, token)) => {
            let flash = match access.previous_token_until {
                Some(until) => format!(
                    "The token of “{}” has been regenerated; the old one still works until {}.",
                    access.name,
                    when(until)
                ),
                None => format!(
                    "The token of “{}” has been regenerated; the old one no longer works.",
                    access.name
                ),
            };
            let reveal = shown_once(&access, &token);
            user.done(&state, flash, Some(reveal), HERE).await
        }
        Err(error) => row_error(&state, &user, "regen", &id, error).await,
    }
}

/// The page again with a row's dialog open and its error shown.
async fn row_error(
    state: &AppState,
    user: &AsAdmin,
    kind: &str,
    id: &str,
    (field, message): FieldError,
) -> Result<Response, WebError> {
    let open = format!("{kind}-{id}");
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    let mut page = page(state, user, user.layout_without_notice()).await?;
    if !page.rows.iter().any(|r| r.id == id) {
        return Err(WebError::not_found());
    }
    page.open = open;
    page.errors.add(field, message);
    Ok(render(status, &page))
}

#[derive(Deserialize)]
pub struct EnabledForm {
    enabled: bool,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, form): Form<AsAdmin, EnabledForm>,
) -> Result<Response, WebError> {
    let access = state
        .service
        .set_access_enabled(user.actor(), &id, form.enabled)
        .await?;
    let flash = if access.enabled {
        format!("API access “{}” enabled.", access.name)
    } else {
        format!(
            "API access “{}” disabled: it is refused everywhere until enabled.",
            access.name
        )
    };
    user.done(&state, flash, None, HERE).await
}

pub async fn set_limits(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, form): Form<AsAdmin, LimitsForm>,
) -> Result<Response, WebError> {
    let changed = match form.parse() {
        Ok(limits) => form_error(
            state
                .service
                .set_access_limits(user.actor(), &id, limits)
                .await,
        )?,
        Err(e) => Err(e),
    };
    match changed {
        Ok(access) => {
            let flash = format!("The limits of “{}” have been changed.", access.name);
            user.done(&state, flash, None, HERE).await
        }
        Err((field, message)) => {
            let open = format!("limits-{id}");
            let mut page = page(&state, &user, user.layout_without_notice()).await?;
            let Some(row) = page.rows.iter_mut().find(|r| r.id == id) else {
                return Err(WebError::not_found());
            };
            // What was sent, not what is stored, so it can be corrected.
            row.form = form;
            page.open = open;
            page.errors.add(field, message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
    }
}

/// "End now": the token replaced by the last regeneration stops working.
pub async fn end_previous(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, NoFields {}): Form<AsAdmin, NoFields>,
) -> Result<Response, WebError> {
    let access = state
        .service
        .end_previous_access_token(user.actor(), &id)
        .await?;
    let flash = format!("The old token of “{}” no longer works.", access.name);
    user.done(&state, flash, None, HERE).await
}

pub async fn delete(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, NoFields {}): Form<AsAdmin, NoFields>,
) -> Result<Response, WebError> {
    let access = state.service.delete_access(user.actor(), &id).await?;
    let flash = format!(
        "API access “{}” has been deleted; its token no longer works.",
        access.name
    );
    user.done(&state, flash, None, HERE).await
}
