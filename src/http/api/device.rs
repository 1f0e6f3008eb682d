//! `/server/api/device`: the article's device resource.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::credential::Secret;
use crate::credential::Token;
use crate::domain::{Device, RequestedLimits, Scope, Timestamp};
use crate::http::auth::DeviceAuth;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo, OptionalApiJson, PathId};
use crate::http::json_body::{Field, JsonBody, OtherFields};
use crate::http::AppState;
use crate::service::{parse_limits, DeviceState, PasswordDeviceRequest, RawLimits, TokenChange};

/// The device resource. `token` appears only in the answers that create one.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceResource {
    #[serde(rename = "_id")]
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    device_name: String,
    device_type: String,
    created_at: Timestamp,
    last_used_at: Option<Timestamp>,
    last_used_ip: Option<String>,
    last_used_user_agent: Option<String>,
    /// The last distinct addresses, newest first.
    recent_ips: Vec<String>,
    scope: Scope,
    expires_at: Option<Timestamp>,
    idle_expiry_days: Option<u32>,
    allowed_networks: Vec<String>,
    denied_networks: Vec<String>,
    /// Past its expiry, idle too long, or beyond the lifetime policy.
    expired: bool,
    /// Until when the password before the last change still works.
    previous_password_valid_until: Option<Timestamp>,
}

impl DeviceResource {
    /// Its fields as sent, `token` included.
    const FIELDS: &'static [&'static str] = &[
        "_id",
        "token",
        "deviceName",
        "deviceType",
        "createdAt",
        "lastUsedAt",
        "lastUsedIp",
        "lastUsedUserAgent",
        "recentIps",
        "scope",
        "expiresAt",
        "idleExpiryDays",
        "allowedNetworks",
        "deniedNetworks",
        "expired",
        "previousPasswordValidUntil",
    ];

    pub fn new(device: Device, state: DeviceState, token: Option<&Token>) -> Self {
        let last_used = device.last_used;
        let limits = device.limits;
        let nets = |list: &[ipnet::IpNet]| list.iter().map(ToString::to_string).collect();
        Self {
            id: device.id.to_string(),
            token: token.map(|t| t.expose().to_owned()),
            device_name: device.name.to_string(),
            device_type: device.device_type,
            created_at: device.created_at,
            last_used_at: last_used.as_ref().map(|u| u.at),
            last_used_ip: last_used
                .as_ref()
                .and_then(|u| u.ip.map(|ip| ip.to_string())),
            recent_ips: last_used
                .as_ref()
                .map(|u| u.recent.iter().map(|ip| ip.to_string()).collect())
                .unwrap_or_default(),
            last_used_user_agent: last_used.and_then(|u| u.user_agent),
            scope: limits.scope,
            expires_at: limits.expires_at,
            idle_expiry_days: limits.idle_expiry_days,
            allowed_networks: nets(&limits.allowed_networks),
            denied_networks: nets(&limits.denied_networks),
            expired: state.expired,
            previous_password_valid_until: state.previous_token_until,
        }
    }
}

fn resource(state: &AppState, device: Device, token: Option<&Token>) -> DeviceResource {
    let now = state.service.device_state(&device);
    DeviceResource::new(device, now, token)
}

/// The limit fields every body that sets limits takes.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LimitFields {
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    idle_expiry_days: Option<u32>,
    #[serde(default)]
    allowed_networks: Option<Vec<String>>,
    #[serde(default)]
    denied_networks: Option<Vec<String>>,
}

impl LimitFields {
    pub(super) fn parse(self) -> Result<RequestedLimits, ApiError> {
        Ok(parse_limits(RawLimits {
            scope: self.scope,
            expires_at: self.expires_at,
            idle_expiry_days: self.idle_expiry_days,
            allowed_networks: self.allowed_networks.unwrap_or_default(),
            denied_networks: self.denied_networks.unwrap_or_default(),
        })?)
    }
}

macro_rules! limit_fields {
    () => {
        [
            Field::optional_string("scope"),
            Field::optional_string("expiresAt"),
            Field::optional_count("idleExpiryDays"),
            Field::optional_strings("allowedNetworks"),
            Field::optional_strings("deniedNetworks"),
        ]
    };
}

/// The limit fields, for bodies elsewhere that set limits too.
pub(super) const LIMIT_FIELDS: [Field; 5] = limit_fields!();

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    email: String,
    password: Secret,
    device_name: String,
    #[serde(default)]
    device_type: Option<String>,
    #[serde(flatten)]
    limits: LimitFields,
}

impl JsonBody for CreateBody {
    const FIELDS: &'static [Field] = &{
        let limits = limit_fields!();
        [
            Field::string("email"),
            Field::string("password"),
            Field::string("deviceName"),
            Field::optional_string("deviceType"),
            limits[0],
            limits[1],
            limits[2],
            limits[3],
            limits[4],
        ]
    };
    // Clients of the original API may send more; nothing here depends on it.
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenameBody {
    device_name: String,
}

impl JsonBody for RenameBody {
    const FIELDS: &'static [Field] = &[Field::string("deviceName")];
    // A client that sends more means to change more, and nothing else can
    // be changed here: say so instead of answering 200 with it unchanged.
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: DeviceResource::FIELDS,
    };
}

/// `PUT /server/api/device/{id}/limits`: all limits at once; a field left
/// out means no such limit.
#[derive(Deserialize, Default)]
pub struct LimitsBody {
    #[serde(flatten)]
    pub(super) limits: LimitFields,
}

impl JsonBody for LimitsBody {
    const FIELDS: &'static [Field] = &limit_fields!();
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: DeviceResource::FIELDS,
    };
}

/// "Change password", optionally with an overlap and a new expiry.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegenerateBody {
    #[serde(default)]
    grace_seconds: Option<u32>,
    #[serde(default)]
    expires_at: Option<String>,
}

impl JsonBody for RegenerateBody {
    const FIELDS: &'static [Field] = &[
        Field::optional_count("graceSeconds"),
        Field::optional_string("expiresAt"),
    ];
    // The article's route took no body: whatever clients sent was unread.
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

impl RegenerateBody {
    pub(super) fn parse(self) -> Result<TokenChange, ApiError> {
        let limits = parse_limits(RawLimits {
            expires_at: self.expires_at,
            ..RawLimits::default()
        })?;
        Ok(TokenChange {
            grace_seconds: self.grace_seconds.unwrap_or(0),
            expires_at: limits.expires_at,
        })
    }
}

/// `POST /server/api/device`: email + main password → a new device and its token.
pub async fn create(
    State(state): State<AppState>,
    info: ClientInfo,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<impl IntoResponse, ApiError> {
    let request = PasswordDeviceRequest {
        email: body.email,
        password: body.password,
        device_name: body.device_name,
        device_type: body.device_type,
        limits: body.limits.parse()?,
    };
    let (device, token) = state
        .service
        .create_device_with_password(request, &info.as_client())
        .await?;
    let location = format!("/server/api/device/{}", device.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(resource(&state, device, Some(&token))),
    ))
}

/// `GET /server/api/device`: the account's devices.
pub async fn list(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
) -> Result<Json<Vec<DeviceResource>>, ApiError> {
    let devices = state.service.devices(&who).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|d| resource(&state, d, None))
            .collect(),
    ))
}

/// `GET /server/api/device/{id}`: the article's start-up check.
pub async fn show(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<Json<DeviceResource>, ApiError> {
    let device = state.service.device(&who, &id).await?;
    Ok(Json(resource(&state, device, None)))
}

/// `PATCH /server/api/device/{id}`: rename.
pub async fn rename(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<RenameBody>,
) -> Result<Json<DeviceResource>, ApiError> {
    let device = state
        .service
        .rename_device(&who, &id, &body.device_name)
        .await?;
    Ok(Json(resource(&state, device, None)))
}

/// `PUT /server/api/device/{id}/limits`: replaces the device's limits.
pub async fn set_limits(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    ApiJson(body): ApiJson<LimitsBody>,
) -> Result<Json<DeviceResource>, ApiError> {
    let limits = body.limits.parse()?;
    let device = state.service.set_device_limits(&who, &id, limits).await?;
    Ok(Json(resource(&state, device, None)))
}

/// `POST /server/api/device/{id}/password`: the article's "Change password";
/// the body is optional.
pub async fn regenerate(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
    OptionalApiJson(body): OptionalApiJson<RegenerateBody>,
) -> Result<Json<DeviceResource>, ApiError> {
    let change = body.parse()?;
    let (device, token) = state.service.regenerate_token(&who, &id, change).await?;
    Ok(Json(resource(&state, device, Some(&token))))
}

/// `DELETE /server/api/device/{id}/previous-password`: "end now".
pub async fn end_previous(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<Json<DeviceResource>, ApiError> {
    let device = state.service.end_previous_token(&who, &id).await?;
    Ok(Json(resource(&state, device, None)))
}

/// `DELETE /server/api/device/{id}`: revokes exactly that device.
pub async fn delete(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    state.service.delete_device(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::DeviceId;
    use crate::domain::{AccountId, DeviceName, LastUse};

    #[test]
    fn the_read_only_fields_are_the_resources() {
        let device = Device {
            id: DeviceId::generate(),
            account_id: AccountId(1),
            name: DeviceName::parse("d").unwrap(),
            device_type: "unknown".into(),
            created_at: Timestamp::from_millis(0),
            last_used: Some(LastUse {
                at: Timestamp::from_millis(0),
                ip: None,
                user_agent: None,
                recent: Default::default(),
            }),
            limits: Default::default(),
            token_issued_at: Timestamp::from_millis(0),
            previous_token_until: None,
        };
        let state = DeviceState {
            expired: false,
            previous_token_until: None,
        };
        let shown =
            serde_json::to_value(DeviceResource::new(device, state, Some(&Token::generate())))
                .unwrap();
        let mut fields: Vec<&str> = shown
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut declared = DeviceResource::FIELDS.to_vec();
        fields.sort_unstable();
        declared.sort_unstable();
        assert_eq!(fields, declared);
    }
}
