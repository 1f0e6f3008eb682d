//! The web interface: server-rendered pages for people who never touch the
//! command line. Sign-in, Personal settings (profile, devices, security) and
//! administration, on top of the same domain [`Service`](crate::domain::Service)
//! as the API.

mod assets;
mod cookie;
mod csrf;
mod page;
mod pages;
mod reveal;
mod session;

use axum::http::{header, HeaderName, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;
use crate::domain::SessionPolicy;
use crate::http::AppState;

/// What the web interface needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct WebSettings {
    pub sessions: SessionPolicy,
    /// Mark cookies `Secure`: the public URL is https.
    pub secure_cookies: bool,
}

impl WebSettings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            sessions: config.sessions,
            secure_cookies: config.https(),
        }
    }
}

/// No inline script or style anywhere, so this can be strict.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    pages::router()
        .merge(assets::router())
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
}
