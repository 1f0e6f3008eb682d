//! The pages, one module per area. Handlers parse, authorize by extractor
//! type, call one domain operation and render or redirect.

mod admin;
mod device;
mod devices;
mod profile;
mod security;
mod sign_in;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::page::{redirect, WebError};
use super::session::SignedIn;
use crate::http::AppState;
use admin::access;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/sign-in", get(sign_in::show).post(sign_in::submit))
        .route(
            "/sign-in/code",
            get(sign_in::show_code).post(sign_in::submit_code),
        )
        .route("/sign-out", post(sign_in::sign_out))
        .route("/device", get(device::show))
        .route("/device/approve", post(device::approve))
        .route("/device/deny", post(device::deny))
        .route("/settings", get(|| async { redirect("/settings/profile") }))
        .route("/settings/profile", get(profile::show))
        .route("/settings/profile/name", post(profile::rename))
        .route("/settings/profile/password", post(profile::change_password))
        .route(
            "/settings/devices",
            get(devices::show).post(devices::create),
        )
        // Each dialog's own address (GET) shows it open, for browsers
        // without the script; the form in it posts to the same address.
        .route("/settings/devices/new", get(devices::show_new))
        .route(
            "/settings/devices/{id}/password",
            get(devices::confirm_regenerate).post(devices::regenerate),
        )
        .route(
            "/settings/devices/{id}/previous-password/end",
            post(devices::end_previous),
        )
        .route(
            "/settings/devices/{id}/delete",
            get(devices::confirm_delete).post(devices::delete),
        )
        .route("/settings/security", get(security::show))
        .route(
            "/settings/security/two-factor",
            get(security::show_enrol).post(security::confirm_enrol),
        )
        .route(
            "/settings/security/two-factor/recovery-codes",
            post(security::regenerate_codes),
        )
        .route(
            "/settings/security/two-factor/off",
            post(security::turn_off),
        )
        .route(
            "/settings/security/sessions/{id}/sign-out",
            post(security::end_session),
        )
        .route(
            "/settings/security/sign-out-others",
            post(security::end_others),
        )
        .route("/admin", get(|| async { redirect("/admin/accounts") }))
        .route("/admin/accounts", get(admin::list).post(admin::create))
        .route("/admin/accounts/new", get(admin::new_account))
        .route("/admin/accounts/{id}", get(admin::show))
        .route(
            "/admin/accounts/{id}/permissions",
            post(admin::set_permission),
        )
        .route("/admin/accounts/{id}/enabled", post(admin::set_enabled))
        .route("/admin/accounts/{id}/password", post(admin::reset_password))
        .route("/admin/accounts/{id}/delete", post(admin::delete_account))
        .route(
            "/admin/accounts/{id}/two-factor/reset",
            get(admin::confirm_reset_two_factor).post(admin::reset_two_factor),
        )
        .route(
            "/admin/accounts/{id}/failed-sign-ins/clear",
            post(admin::clear_failed_sign_ins),
        )
        .route(
            "/admin/accounts/{id}/devices/{device}/delete",
            get(admin::confirm_revoke_device).post(admin::revoke_device),
        )
        .route("/admin/access", get(access::list).post(access::create))
        .route("/admin/access/new", get(access::show_new))
        .route(
            "/admin/access/{id}/token",
            get(access::confirm_regenerate).post(access::regenerate),
        )
        .route(
            "/admin/access/{id}/previous-token/end",
            post(access::end_previous),
        )
        .route("/admin/access/{id}/enabled", post(access::set_enabled))
        .route(
            "/admin/access/{id}/limits",
            get(access::edit_limits).post(access::set_limits),
        )
        .route(
            "/admin/access/{id}/delete",
            get(access::confirm_delete).post(access::delete),
        )
}

async fn home(user: Result<SignedIn, WebError>) -> Response {
    match user {
        Ok(_) => redirect("/settings/profile"),
        Err(_) => redirect("/sign-in"),
    }
}

/// Path parameters; a malformed one is simply a page that does not exist.
pub struct PagePath<T>(pub T);

impl<S, T> FromRequestParts<S> for PagePath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PagePath(value))
            .map_err(|_| WebError::not_found())
    }
}

/// A form with nothing but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}
