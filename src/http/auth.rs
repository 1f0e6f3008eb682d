//! Authorization by type: a handler that takes a [`DeviceAuth`] only runs
//! for a request that carried a valid device password, one that takes an
//! [`AccessAuth`] for a valid API access authorisation.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::basic::{self, BasicCredentials, BasicError};
use super::error::ApiError;
use super::extract::client;
use super::AppState;
use crate::domain::Scope;
use crate::service::{AccessCaller, Caller, DeviceCaller, ServiceError, WarmCheck};

/// The wrapped caller can only come from [`Service::authenticate`](crate::service::Service::authenticate).
pub struct DeviceAuth(pub DeviceCaller);

/// A service's API access authorisation, proved like a device password.
pub struct AccessAuth(pub AccessCaller);

impl FromRequestParts<AppState> for AccessAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let need = Scope::needed_for(parts.method.as_str().as_bytes());
        match caller(parts, state, need).await? {
            Caller::Access(access) => Ok(AccessAuth(access)),
            // A device's own resource is under /server/api/device.
            Caller::Device(_) => Err(ServiceError::AccessNotFound.into()),
        }
    }
}

const USE_DEVICE_PASSWORD: &str = "Sign in with a device password: HTTP Basic auth with the device ID as user name and the device password as password. Create one in Personal settings, Devices tab, or with POST /server/api/device.";

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::of(parts, state).await
    }
}

impl DeviceAuth {
    /// The proof for a request, needing the scope its method needs.
    pub async fn of(parts: &Parts, state: &AppState) -> Result<Self, ApiError> {
        let need = Scope::needed_for(parts.method.as_str().as_bytes());
        device_caller(parts, state, need).await.map(DeviceAuth)
    }
}

/// The device a request's Basic credentials prove, for a route that acts
/// for the device's account (an API access authorisation acts for none).
pub async fn device_caller(
    parts: &Parts,
    state: &AppState,
    need: Scope,
) -> Result<DeviceCaller, ApiError> {
    of_a_person(caller(parts, state, need).await?)
}

/// The device, if the caller is a person's: an API access authorisation
/// acts for no account.
pub fn of_a_person(caller: Caller) -> Result<DeviceCaller, ApiError> {
    match caller {
        Caller::Device(device) => Ok(device),
        Caller::Access(_) => Err(ServiceError::AccountRequired.into()),
    }
}

/// The credential a request's Basic credentials prove, for a request that
/// needs `need`: every way a device password or an API access
/// authorisation arrives comes through here.
pub async fn caller(parts: &Parts, state: &AppState, need: Scope) -> Result<Caller, ApiError> {
    let credentials = presented(parts)?;
    let (user_id, password) = credentials.split();
    let client = client(parts, &state.trusted_proxies)?;
    Ok(state
        .service
        .authenticate_caller(user_id, password, &client, need)
        .await?)
}

/// [`caller`], if it can be decided without waiting (see
/// [`Service::authenticate_warm`](crate::service::Service::authenticate_warm)):
/// `None` when only the store can tell, and [`caller`] has to.
pub fn caller_if_cached(
    parts: &Parts,
    state: &AppState,
    need: Scope,
) -> Option<Result<Caller, ApiError>> {
    let credentials = match presented(parts) {
        Ok(credentials) => credentials,
        Err(e) => return Some(Err(e)),
    };
    let (user_id, password) = credentials.split();
    let client = match client(parts, &state.trusted_proxies) {
        Ok(client) => client,
        Err(e) => return Some(Err(e.into())),
    };
    match state
        .service
        .authenticate_warm(user_id, password, &client, need)
    {
        WarmCheck::Decided(decided) => Some(decided.map_err(ApiError::from)),
        WarmCheck::Cold(_) => None,
    }
}

/// A request's one Basic `Authorization` header, decoded: never an email
/// and main password, which this path must not become a second place to
/// guess.
fn presented(parts: &Parts) -> Result<BasicCredentials, ApiError> {
    let mut headers = parts.headers.get_all(AUTHORIZATION).iter();
    let (Some(header), None) = (headers.next(), headers.next()) else {
        return Err(ApiError::unauthorized(
            "missing_credentials",
            USE_DEVICE_PASSWORD,
        ));
    };
    let credentials = basic::parse(header.as_bytes()).map_err(|e| match e {
        BasicError::NotBasic => ApiError::unauthorized(
            "missing_credentials",
            format!("Only HTTP Basic auth is accepted. {USE_DEVICE_PASSWORD}"),
        ),
        BasicError::Malformed => ApiError::unauthorized(
            "malformed_credentials",
            "The Authorization header is not valid Basic auth: it must be \"Basic \" followed by base64 of \"deviceId:password\".",
        ),
    })?;
    if credentials.split().0.contains('@') {
        return Err(ApiError::unauthorized(
            "device_password_required",
            format!("Email address and main password are not accepted here. {USE_DEVICE_PASSWORD}"),
        ));
    }
    Ok(credentials)
}
