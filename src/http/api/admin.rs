//! `/server/api/admin/…`: accounts, their permissions and state, and every
//! account's devices, for an administrator's credential with the `admin`
//! scope. Every route needs that scope, reading ones too: what an
//! administrator can see (every account, every device) is administration.

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::device::DeviceResource;
use crate::domain::{AccountId, Permission, Scope, Timestamp};
use crate::http::auth::caller;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::service::{AccountOverview, ApiAdministrator, OwnedDevice, ServiceError};

/// The proof a handler of the admin API takes: the request's credential
/// has the `admin` scope, checked by the one scope check every route goes
/// through, and its holder is an administrator.
pub struct AdminApiAuth(pub ApiAdministrator);

impl FromRequestParts<AppState> for AdminApiAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = caller(parts, state, Scope::Admin).await?;
        Ok(AdminApiAuth(state.service.api_administrator(caller)?))
    }
}

/// Path segments, refused with a stable code when they do not fit.
pub struct Segments<T>(T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| Segments(t))
            .map_err(|_| ApiError::bad_request("invalid_request", "The address is malformed."))
    }
}

/// A query string, refused with a stable code when it does not fit.
pub struct ApiQuery<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| ApiQuery(t))
            .map_err(|_| ApiError::bad_request("invalid_query", "The query string cannot be read."))
    }
}

/// An account id from the address: anything that is not one is an account
/// that does not exist, as an unknown number is.
fn account_id(raw: &str) -> Result<AccountId, ServiceError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(AccountId)
        .ok_or_else(|| ServiceError::AccountNotFound("that ID".to_owned()))
}

fn permission(raw: &str) -> Result<Permission, ServiceError> {
    raw.parse()
        .map_err(|e| ServiceError::invalid("invalid_permission", e))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResource {
    id: i64,
    email: String,
    name: String,
    enabled: bool,
    permissions: Vec<&'static str>,
    two_factor_enabled: bool,
    created_at: Timestamp,
    /// In the answers that read accounts, not in those that change one.
    #[serde(skip_serializing_if = "Option::is_none")]
    device_count: Option<usize>,
}

impl AccountResource {
    fn new(account: crate::domain::Account, device_count: Option<usize>) -> Self {
        Self {
            id: account.id.0,
            email: account.email.to_string(),
            name: account.name,
            enabled: account.enabled,
            permissions: account.permissions.iter().map(Permission::as_str).collect(),
            two_factor_enabled: account.two_factor_enabled,
            created_at: account.created_at,
            device_count,
        }
    }

    fn of(overview: AccountOverview) -> Self {
        Self::new(overview.account, Some(overview.devices))
    }
}

/// A device as `/server/api/device` shows it, and whose it is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdminDeviceResource {
    #[serde(flatten)]
    device: DeviceResource,
    account_id: i64,
    account_email: String,
}

impl AdminDeviceResource {
    fn new(state: &AppState, owned: OwnedDevice) -> Self {
        let now = state.service.device_state(&owned.device);
        Self {
            account_id: owned.owner.id.0,
            account_email: owned.owner.email.to_string(),
            device: DeviceResource::new(owned.device, now, None),
        }
    }
}

#[derive(Deserialize)]
pub struct AccountsQuery {
    #[serde(default)]
    q: String,
}

/// `GET /server/api/admin/accounts?q=`: every account, or those whose email
/// or name contains `q` (case-insensitive).
pub async fn accounts(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    ApiQuery(query): ApiQuery<AccountsQuery>,
) -> Result<Json<Vec<AccountResource>>, ApiError> {
    let accounts = state.service.account_overviews(&admin, &query.q).await?;
    Ok(Json(
        accounts.into_iter().map(AccountResource::of).collect(),
    ))
}

/// `GET /server/api/admin/accounts/{id}`.
pub async fn account(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments(id): Segments<String>,
) -> Result<Json<AccountResource>, ApiError> {
    let account = state
        .service
        .account_overview(&admin, account_id(&id)?)
        .await?;
    Ok(Json(AccountResource::of(account)))
}

/// `PUT /server/api/admin/accounts/{id}/permissions/{permission}`: grants it.
pub async fn grant(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments((id, name)): Segments<(String, String)>,
) -> Result<Json<AccountResource>, ApiError> {
    set_permission(&state, &admin, &id, &name, true).await
}

/// `DELETE /server/api/admin/accounts/{id}/permissions/{permission}`: revokes it.
pub async fn revoke(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments((id, name)): Segments<(String, String)>,
) -> Result<Json<AccountResource>, ApiError> {
    set_permission(&state, &admin, &id, &name, false).await
}

async fn set_permission(
    state: &AppState,
    admin: &ApiAdministrator,
    id: &str,
    name: &str,
    granted: bool,
) -> Result<Json<AccountResource>, ApiError> {
    let id = account_id(id)?;
    let account = state
        .service
        .set_permission(admin, id, permission(name)?, granted)
        .await?;
    Ok(Json(AccountResource::new(account, None)))
}

/// `POST /server/api/admin/accounts/{id}/disable`: its device passwords
/// and web sessions stop working at once, on every node.
pub async fn disable(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments(id): Segments<String>,
) -> Result<Json<AccountResource>, ApiError> {
    let account = state
        .service
        .set_enabled(&admin, account_id(&id)?, false)
        .await?;
    Ok(Json(AccountResource::new(account, None)))
}

/// `POST /server/api/admin/accounts/{id}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments(id): Segments<String>,
) -> Result<Json<AccountResource>, ApiError> {
    let account = state
        .service
        .set_enabled(&admin, account_id(&id)?, true)
        .await?;
    Ok(Json(AccountResource::new(account, None)))
}

#[derive(Deserialize)]
pub struct DevicesQuery {
    #[serde(default)]
    account: Option<String>,
}

/// `GET /server/api/admin/devices?account=`: every account's devices, or
/// one account's.
pub async fn devices(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    ApiQuery(query): ApiQuery<DevicesQuery>,
) -> Result<Json<Vec<AdminDeviceResource>>, ApiError> {
    let devices = match query.account.as_deref() {
        None | Some("") => state.service.devices_with_owners(&admin).await?,
        Some(raw) => {
            let owner = account_id(raw).map_err(|_| {
                ApiError::bad_request(
                    "invalid_query",
                    "account must be an account's ID, a whole number.",
                )
            })?;
            state
                .service
                .devices_with_owners(&admin.over(owner))
                .await?
        }
    };
    Ok(Json(
        devices
            .into_iter()
            .map(|d| AdminDeviceResource::new(&state, d))
            .collect(),
    ))
}

/// `DELETE /server/api/admin/devices/{id}`: revokes any account's device,
/// on every node at once.
pub async fn delete_device(
    State(state): State<AppState>,
    AdminApiAuth(admin): AdminApiAuth,
    Segments(id): Segments<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_device(&admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
