//! The JSON API under `/server/api`.

pub mod access;
mod admin;
mod device;
mod device_authorization;
mod user;

use axum::routing::{delete, get, post, put};
use axum::Router;

use super::AppState;

pub(super) use device::show_hot as show_device;

/// Where the API lives.
pub const BASE_PATH: &str = "/server/api";

/// Whether `path` is the API's: its base path or anything under it.
pub fn is_api_path(path: &str) -> bool {
    path.strip_prefix(BASE_PATH)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/server/api/device", post(device::create).get(device::list))
        .route(
            "/server/api/device/{id}",
            get(device::show)
                .patch(device::rename)
                .delete(device::delete),
        )
        .route("/server/api/device/{id}/password", post(device::regenerate))
        .route(
            "/server/api/device/authorize",
            post(device_authorization::start),
        )
        .route(
            "/server/api/device/authorize/token",
            post(device_authorization::poll),
        )
        .route("/server/api/device/{id}/limits", put(device::set_limits))
        .route(
            "/server/api/device/{id}/previous-password",
            delete(device::end_previous),
        )
        .route("/server/api/user", get(user::show))
        .route("/server/api/access/{id}", get(access::show))
        .route("/server/api/admin/accounts", get(admin::accounts))
        .route("/server/api/admin/accounts/{id}", get(admin::account))
        .route(
            "/server/api/admin/accounts/{id}/permissions/{permission}",
            put(admin::grant).delete(admin::revoke),
        )
        .route(
            "/server/api/admin/accounts/{id}/disable",
            post(admin::disable),
        )
        .route(
            "/server/api/admin/accounts/{id}/enable",
            post(admin::enable),
        )
        .route(
            "/server/api/admin/access",
            get(access::list).post(access::create),
        )
        .route(
            "/server/api/admin/access/{id}",
            get(access::show_any)
                .patch(access::update)
                .delete(access::delete),
        )
        .route(
            "/server/api/admin/access/{id}/limits",
            put(access::set_limits),
        )
        .route(
            "/server/api/admin/access/{id}/token",
            post(access::regenerate),
        )
        .route(
            "/server/api/admin/access/{id}/previous-token",
            delete(access::end_previous),
        )
        .route(
            "/server/api/admin/access/{id}/disable",
            post(access::disable),
        )
        .route("/server/api/admin/access/{id}/enable", post(access::enable))
        .route("/server/api/admin/devices", get(admin::devices))
        .route(
            "/server/api/admin/devices/{id}",
            delete(admin::delete_device),
        )
}

#[cfg(test)]
mod tests {
    use super::is_api_path;

    #[test]
    fn api_paths_are_those_under_the_base_path() {
        for path in [
            "/server/api",
            "/server/api/",
            "/server/api/device/1",
            "/server/api/admin/accounts/1",
        ] {
            assert!(is_api_path(path), "{path}");
        }
        for path in [
            "/",
            "/sign-in",
            "/server",
            "/server/",
            "/server/apix",
            "/healthz",
        ] {
            assert!(!is_api_path(path), "{path}");
        }
    }
}
