//! The stylesheet and script, compiled into the binary: no build step, no
//! files to deploy beside it.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::http::AppState;

const STYLESHEET: &str = include_str!("../../../static/app.css");
const SCRIPT: &str = include_str!("../../../static/app.js");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(stylesheet))
        .route("/static/app.js", get(script))
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
}
