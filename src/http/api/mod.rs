//! The JSON API under `/server/api`.

mod device;
mod user;

use axum::routing::{get, post};
use axum::Router;

use super::AppState;

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
        .route("/server/api/user", get(user::show))
}
