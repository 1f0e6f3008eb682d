//! Personal settings, Devices tab: the article's main path. New device
//! password, Change password and Delete, each on one's own devices only.
//!
//! Each dialog also has its own address (GET), which answers with the tab
//! and that dialog already open: the script opens the dialogs in place,
//! and without it the buttons, being links, go there instead.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::{NoFields, PagePath};
use crate::credential::Token;
use crate::domain::{Device, Permission, RequestedLimits};
use crate::http::web::csrf::Form;
use crate::http::web::page::{render, when, FieldErrors, Layout, WebError};
use crate::http::web::reveal::{CredentialShown, Reveal};
use crate::http::web::session::SignedIn;
use crate::http::AppState;
use crate::service::{parse_limits, DeviceState, RawLimits, ServiceError, TokenChange};

const HERE: &str = "/settings/devices";

#[derive(Template)]
#[template(path = "settings/devices.html")]
struct DevicesPage {
    layout: Layout,
    tab: &'static str,
    devices: Vec<DeviceRow>,
    types: Vec<String>,
    new_name: String,
    new_type: String,
    errors: FieldErrors,
    may_regenerate: bool,
    /// Whether the new-device dialog offers the admin scope.
    may_admin_scope: bool,
    action_base: String,
    /// Where Cancel goes: this tab.
    back: String,
    open: OpenDialog,
}

/// The dialog a page arrives with open, when it is that dialog's address.
#[derive(Default)]
pub struct OpenDialog(Option<String>);

impl OpenDialog {
    const NEW_DEVICE: &'static str = "new-device";

    pub fn new_device() -> Self {
        Self(Some(Self::NEW_DEVICE.to_owned()))
    }

    /// A row's dialog: `kind` is `regen` or `delete`, as in the dialog's id.
    pub fn row(kind: &str, device: &Device) -> Self {
        Self(Some(format!("{kind}-{}", device.id)))
    }

    pub fn is_new_device(&self) -> bool {
        self.0.as_deref() == Some(Self::NEW_DEVICE)
    }

    pub fn is_row(&self, kind: &str, id: &str) -> bool {
        self.0
            .as_deref()
            .and_then(|open| open.strip_prefix(kind))
            .and_then(|rest| rest.strip_prefix('-'))
            == Some(id)
    }
}

/// A device as the tables show it.
pub struct DeviceRow {
    pub id: String,
    pub name: String,
    pub device_type: String,
    pub created: String,
    pub last_used: Option<String>,
    /// The last distinct addresses, newest first, comma-separated.
    pub last_addresses: Option<String>,
    pub scope: &'static str,
    /// Expiry, idle expiry and networks, in words; empty for none.
    pub limits: Vec<String>,
    pub expired: bool,
    /// Until when the password before the last change still works.
    pub previous_until: Option<String>,
}

impl DeviceRow {
    pub fn new(device: Device, state: DeviceState) -> Self {
        let limits = &device.limits;
        let mut shown = Vec::new();
        if let Some(at) = limits.expires_at {
            shown.push(format!("expires {}", when(at)));
        }
        if let Some(days) = limits.idle_expiry_days {
            shown.push(format!("expires after {days} days unused"));
        }
        let nets = |list: &[ipnet::IpNet]| {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !limits.allowed_networks.is_empty() {
            shown.push(format!("only from {}", nets(&limits.allowed_networks)));
        }
        if !limits.denied_networks.is_empty() {
            shown.push(format!("never from {}", nets(&limits.denied_networks)));
        }
        let addresses: Vec<String> = device
            .last_used
            .as_ref()
            .map(|u| u.recent.iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default();
        Self {
            id: device.id.to_string(),
            name: device.name.to_string(),
            device_type: device.device_type.to_string(),
            created: when(device.created_at),
            last_used: device.last_used.as_ref().map(|u| when(u.at)),
            last_addresses: (!addresses.is_empty()).then(|| addresses.join(", ")),
            scope: limits.scope.as_str(),
            limits: shown,
            expired: state.expired,
            previous_until: state.previous_token_until.map(when),
        }
    }
}

/// The dialog after Save or Change password: what to paste into the app.
pub fn shown_once(device: &Device, token: &Token) -> Reveal {
    CredentialShown {
        title: format!("Device password for “{}”", device.name),
        id: ("shown-device-id", "Device ID", device.id.as_str()),
        token: ("shown-password", "Device password", token),
    }
    .into()
}

async fn page(state: &AppState, user: &SignedIn, layout: Layout) -> Result<DevicesPage, WebError> {
    // Refuses, with the permission to ask for, a member without it.
    let devices = state.service.devices(user.actor()).await?;
    Ok(DevicesPage {
        layout,
        tab: "devices",
        devices: devices
            .into_iter()
            .map(|d| {
                let now = state.service.device_state(&d);
                DeviceRow::new(d, now)
            })
            .collect(),
        may_admin_scope: user
            .actor()
            .account()
            .permissions
            .contains(Permission::Admin),
        types: state
            .service
            .device_types()
            .iter()
            .map(str::to_owned)
            .collect(),
        new_name: String::new(),
        new_type: String::new(),
        errors: FieldErrors::default(),
        may_regenerate: true,
        action_base: HERE.to_owned(),
        back: HERE.to_owned(),
        open: OpenDialog::default(),
    })
}

pub async fn show(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    let layout = user.layout(&state).await?;
    Ok(render(StatusCode::OK, &page(&state, &user, layout).await?))
}

/// The tab with one dialog open. What is left to show once waits for the
/// tab itself, so two dialogs never arrive open together.
async fn with_dialog(
    state: &AppState,
    user: &SignedIn,
    open: OpenDialog,
) -> Result<Response, WebError> {
    let mut page = page(state, user, user.layout_without_notice()).await?;
    page.open = open;
    Ok(render(StatusCode::OK, &page))
}

pub async fn show_new(State(state): State<AppState>, user: SignedIn) -> Result<Response, WebError> {
    with_dialog(&state, &user, OpenDialog::new_device()).await
}

pub async fn confirm_regenerate(
    State(state): State<AppState>,
    user: SignedIn,
    PagePath(id): PagePath<String>,
) -> Result<Response, WebError> {
    let device = state.service.device(user.actor(), &id).await?;
    with_dialog(&state, &user, OpenDialog::row("regen", &device)).await
}

pub async fn confirm_delete(
    State(state): State<AppState>,
    user: SignedIn,
    PagePath(id): PagePath<String>,
) -> Result<Response, WebError> {
    let device = state.service.device(user.actor(), &id).await?;
    with_dialog(&state, &user, OpenDialog::row("delete", &device)).await
}

#[derive(Deserialize)]
pub struct NewDevice {
    #[serde(default)]
    name: String,
    #[serde(default)]
    device_type: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    expires: String,
    #[serde(default)]
    idle_days: String,
    #[serde(default)]
    allowed_networks: String,
    #[serde(default)]
    denied_networks: String,
}

impl NewDevice {
    fn limits(&self) -> Result<RequestedLimits, ServiceError> {
        let idle = self.idle_days.trim();
        let idle_expiry_days = if idle.is_empty() {
            None
        } else {
            Some(idle.parse::<u32>().map_err(|_| {
                ServiceError::invalid(
                    "invalid_idle_expiry",
                    "The idle expiry must be a number of days.",
                )
            })?)
        };
        parse_limits(RawLimits {
            scope: Some(self.scope.clone()),
            expires_at: Some(self.expires.clone()),
            idle_expiry_days,
            allowed_networks: vec![self.allowed_networks.clone()],
            denied_networks: vec![self.denied_networks.clone()],
        })
    }
}

#[derive(Deserialize)]
pub struct ChangePassword {
    #[serde(default)]
    grace_seconds: String,
    #[serde(default)]
    expires: String,
}

pub async fn create(
    State(state): State<AppState>,
    Form(user, form): Form<SignedIn, NewDevice>,
) -> Result<Response, WebError> {
    let device_type = Some(form.device_type.trim()).filter(|t| !t.is_empty());
    let created = match form.limits() {
        Ok(limits) => {
            state
                .service
                .create_device(user.actor(), &form.name, device_type, limits)
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok((device, token)) => {
            let flash = format!("Device password “{}” created.", device.name);
            let reveal = shown_once(&device, &token);
            user.done(&state, flash, Some(reveal), HERE).await
        }
        Err(ServiceError::Invalid { message, .. }) => {
            let mut page = page(&state, &user, user.layout_without_notice()).await?;
            page.new_name = form.name;
            page.new_type = form.device_type;
            page.errors.add("name", message);
            Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn regenerate(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, form): Form<SignedIn, ChangePassword>,
) -> Result<Response, WebError> {
    let grace_seconds = match form.grace_seconds.trim() {
        "" => 0,
        raw => raw.parse::<u32>().map_err(|_| WebError::bad_form())?,
    };
    let expires_at = parse_limits(RawLimits {
        expires_at: Some(form.expires),
        ..RawLimits::default()
    })?
    .expires_at;
    let change = TokenChange {
        grace_seconds,
        expires_at,
    };
    let (device, token) = state
        .service
        .regenerate_token(user.actor(), &id, change)
        .await?;
    let flash = match device.previous_token_until {
        Some(until) => format!(
            "The password of “{}” has been changed; the old one still works until {}.",
            device.name,
            when(until)
        ),
        None => format!(
            "The password of “{}” has been changed; the old one no longer works.",
            device.name
        ),
    };
    let reveal = shown_once(&device, &token);
    user.done(&state, flash, Some(reveal), HERE).await
}

/// "End now": the old password of the last change stops working at once.
pub async fn end_previous(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, NoFields {}): Form<SignedIn, NoFields>,
) -> Result<Response, WebError> {
    let device = state.service.end_previous_token(user.actor(), &id).await?;
    let flash = format!("The old password of “{}” no longer works.", device.name);
    user.done(&state, flash, None, HERE).await
}

pub async fn delete(
    State(state): State<AppState>,
    PagePath(id): PagePath<String>,
    Form(user, NoFields {}): Form<SignedIn, NoFields>,
) -> Result<Response, WebError> {
    let device = state.service.delete_device(user.actor(), &id).await?;
    let flash = format!(
        "“{}” has been deleted; its password no longer works.",
        device.name
    );
    user.done(&state, flash, None, HERE).await
}
