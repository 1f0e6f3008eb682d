//! `/server/api/device/authorize`: app sign-in, the shape of RFC 8628's
//! device authorization grant. The app starts without credentials, shows
//! the person a code and an address, and polls until the person has
//! approved or denied in the web interface.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::device::DeviceResource;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, ClientInfo};
use crate::http::json_body::{Field, JsonBody, OtherFields};
use crate::http::AppState;
use crate::service::{AuthorizationRequest, Poll};

/// Where people approve: a page of this server.
pub const VERIFICATION_PATH: &str = "/device";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartBody {
    device_name: String,
    #[serde(default)]
    device_type: Option<String>,
}

impl JsonBody for StartBody {
    // The same fields, checked the same way, as the password route's.
    const FIELDS: &'static [Field] = &[
        Field::string("deviceName"),
        Field::optional_string("deviceType"),
    ];
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Started {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// `POST /server/api/device/authorize`: an app asks to sign in.
pub async fn start(
    State(state): State<AppState>,
    info: ClientInfo,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let request = AuthorizationRequest {
        device_name: body.device_name,
        device_type: body.device_type,
    };
    let started = state
        .service
        .start_device_authorization(request, &info.as_client())
        .await?;
    let verification_uri = format!("{}{VERIFICATION_PATH}", state.base_url);
    let user_code = started.user_code.display();
    let complete = format!(
        "{verification_uri}?{}",
        serde_urlencoded::to_string([("code", user_code.as_str())]).unwrap_or_default()
    );
    Ok(Json(Started {
        device_code: started.device_code.expose().to_owned(),
        user_code,
        verification_uri,
        verification_uri_complete: complete,
        expires_in: started.expires_in.as_secs(),
        interval: started.interval.as_secs(),
    })
    .into_response())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollBody {
    device_code: String,
}

impl JsonBody for PollBody {
    const FIELDS: &'static [Field] = &[Field::string("deviceCode")];
    const OTHER_FIELDS: OtherFields = OtherFields::Ignore;
}

fn poll_error(code: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": code, "message": message })),
    )
        .into_response()
}

/// `POST /server/api/device/authorize/token`: the app polls; exactly one
/// poll after approval gets the device resource with its token.
pub async fn poll(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<PollBody>,
) -> Result<Response, ApiError> {
    let outcome = state
        .service
        .poll_device_authorization(&body.device_code)
        .await?;
    Ok(match outcome {
        Poll::Approved(device, token) => {
            let device_state = state.service.device_state(&device);
            Json(DeviceResource::new(*device, device_state, Some(&token))).into_response()
        }
        Poll::Pending => poll_error(
            "authorization_pending",
            "The person has not approved or denied this sign-in yet. Poll again after the interval.",
        ),
        Poll::SlowDown(interval) => (
            StatusCode::BAD_REQUEST,
            Json(json!({
                "error": "slow_down",
                "message": format!("Polled too soon. Wait at least {} seconds between polls from now on.", interval.as_secs()),
                "interval": interval.as_secs(),
            })),
        )
            .into_response(),
        Poll::Denied => poll_error(
            "access_denied",
            "The person denied this sign-in (or deleted the device, or changed its password, before the app collected it).",
        ),
        Poll::Expired => poll_error(
            "expired_token",
            "This device code has expired or has been used. Start the sign-in again.",
        ),
        Poll::Unknown => poll_error(
            "invalid_grant",
            "This is not a device code this server issued. Start the sign-in again.",
        ),
    })
}
