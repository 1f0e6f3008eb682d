//! `/server/api/device`: the article's device resource.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::credential::Secret;
use crate::credential::Token;
use crate::domain::{Device, Timestamp};
use crate::http::auth::DeviceAuth;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo, PathId};
use crate::http::json_body::{Field, JsonBody, OtherFields};
use crate::http::AppState;
use crate::service::PasswordDeviceRequest;

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
    ];

    pub fn new(device: Device, token: Option<&Token>) -> Self {
        let last_used = device.last_used;
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
            last_used_user_agent: last_used.and_then(|u| u.user_agent),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBody {
    email: String,
    password: Secret,
    device_name: String,
    #[serde(default)]
    device_type: Option<String>,
}

impl JsonBody for CreateBody {
    const FIELDS: &'static [Field] = &[
        Field::string("email"),
        Field::string("password"),
        Field::string("deviceName"),
        Field::optional_string("deviceType"),
    ];
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
    // be changed: say so instead of answering 200 with it unchanged.
    const OTHER_FIELDS: OtherFields = OtherFields::Refuse {
        read_only: DeviceResource::FIELDS,
    };
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
    };
    let (device, token) = state
        .service
        .create_device_with_password(request, &info.as_client())
        .await?;
    let location = format!("/server/api/device/{}", device.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(DeviceResource::new(device, Some(&token))),
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
            .map(|d| DeviceResource::new(d, None))
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
    Ok(Json(DeviceResource::new(device, None)))
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
    Ok(Json(DeviceResource::new(device, None)))
}

/// `POST /server/api/device/{id}/password`: the article's "Change password".
pub async fn regenerate(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
    PathId(id): PathId,
) -> Result<Json<DeviceResource>, ApiError> {
    let (device, token) = state.service.regenerate_token(&who, &id).await?;
    Ok(Json(DeviceResource::new(device, Some(&token))))
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
            }),
        };
        let shown =
            serde_json::to_value(DeviceResource::new(device, Some(&Token::generate()))).unwrap();
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
