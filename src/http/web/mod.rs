//! The web interface: server-rendered pages for people who never touch the
//! command line. Sign-in, Personal settings (profile, devices, security) and
//! administration, on top of the same domain [`Service`](crate::domain::Service)
//! as the API.

mod assets;
mod cookie;
mod csrf;
mod page;
mod pages;
mod return_to;
mod reveal;
mod session;

use axum::http::{header, HeaderName, HeaderValue, Uri};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::http::error::ApiError;
use crate::http::limits::TooLarge;
use crate::http::AppState;

/// No inline script or style anywhere, so this can be strict.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    pages::router()
        .merge(assets::router())
        .layer(map_response(with_security_headers))
}

async fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// Unknown addresses: the API's JSON error under `/server/`, where programs
/// call, and a page everywhere else, where people type.
pub async fn fallback(uri: Uri) -> Response {
    api_error_or_page(&uri, ApiError::not_found(), page::WebError::not_found()).await
}

/// A request too large to read, in the same two shapes.
pub async fn too_large(uri: &Uri, what: TooLarge) -> Response {
    api_error_or_page(
        uri,
        ApiError::too_large(what),
        page::WebError::too_large(what),
    )
    .await
}

async fn api_error_or_page(uri: &Uri, api: ApiError, page: page::WebError) -> Response {
    if uri.path().starts_with("/server/") {
        api.into_response()
    } else {
        with_security_headers(page.into_response()).await
    }
}
