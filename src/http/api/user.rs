//! `/server/api/user`: the account behind the device password.

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use crate::domain::Timestamp;
use crate::http::auth::DeviceAuth;
use crate::http::error::ApiError;
use crate::http::AppState;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserResource {
    email: String,
    name: String,
    permissions: Vec<&'static str>,
    two_factor_enabled: bool,
    created_at: Timestamp,
}

pub async fn show(
    State(state): State<AppState>,
    DeviceAuth(who): DeviceAuth,
) -> Result<Json<UserResource>, ApiError> {
    let account = state.service.own_account(&who).await?;
    Ok(Json(UserResource {
        email: account.email.to_string(),
        name: account.name,
        permissions: account.permissions.iter().map(|p| p.as_str()).collect(),
        two_factor_enabled: account.two_factor_enabled,
        created_at: account.created_at,
    }))
}
