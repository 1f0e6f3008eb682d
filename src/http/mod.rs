//! HTTP: the JSON API ([`api`]) and the web interface ([`web`]) on one
//! router, with the proofs the extractors produce, the error contract and
//! the accept loop. Handlers parse, authorize (their extractor is the
//! proof), call one service operation and render.

pub mod api;
mod app_service;
pub mod auth;
mod authz;
pub mod basic;
mod client_addr;
mod coarse_timer;
pub mod error;
pub mod extract;
mod front;
mod hot_routes;
pub mod json_body;
pub mod limits;
mod serve;
mod state;
pub mod web;

pub use app_service::App;
pub use limits::MAX_BODY_BYTES;
pub use serve::serve;
pub use state::{AppState, Shared, WebSettings};

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tower::{Layer, ServiceBuilder, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{MakeSpan, TraceLayer};
use tracing::{Level, Span};

use error::ApiError;
use ipnet::IpNet;

/// Readiness for load balancers: 200 while the database answers, 503 otherwise.
async fn ready(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.service.ready().await?;
    Ok("ready")
}

/// The whole HTTP surface. No request may take longer than `request_timeout`,
/// whatever it waits for (a slow body, a password-hashing slot, the database),
/// and none larger than [`limits`] allow is read.
pub fn router(state: AppState, cors_origins: &[HeaderValue], request_timeout: Duration) -> App {
    let router = Router::new()
        .merge(api::router())
        .merge(authz::router())
        .merge(web::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .fallback(web::fallback)
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() });
    let front = front::FrontLayer { request_timeout };
    let span = RequestSpan {
        trusted_proxies: state.trusted_proxies.clone(),
    };
    if cors_origins.is_empty() {
        // The front layer around the router, not on it (see `app_service`),
        // and the hot routes taken before it.
        let hot = hot_routes::HotRoutes::new(router.with_state(state.clone()), state);
        let front = front.layer(hot);
        // The access log's layer only when its lines are wanted: the filter
        // is fixed at start, and the layer costs a request two clock reads
        // and a body wrapper even when nobody listens.
        return if access_log_wanted() {
            App::Traced(TraceLayer::new_for_http().make_span_with(span).layer(front))
        } else {
            App::Direct(front)
        };
    }
    // One composed stack, applied once: every `Router::layer` call wraps
    // each route in a boxed service of its own, which a request then clones
    // and calls level by level.
    let router = if access_log_wanted() {
        router.layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http().make_span_with(span))
                .layer(front),
        )
    } else {
        router.layer(front)
    };
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::list(cors_origins.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // So browser apps can read where a new device lives and when to retry.
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .max_age(Duration::from_secs(600));
    App::Layered(
        router
            .layer(middleware::from_fn_with_state(cors, cors_on_the_api))
            .with_state(state),
    )
}

/// Whether the log filter lets through the access log (`tower_http=debug`).
/// tower-http's other line, an `error` for each 5xx answer, is not missed
/// without it: every 5xx answer's cause is logged where it arises (the
/// API's and the pages' errors), with more than a status.
fn access_log_wanted() -> bool {
    tracing::enabled!(target: "tower_http::trace::make_span", Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace::on_response", Level::DEBUG)
}

/// The span of each request's log lines (`tower_http=debug` shows them):
/// tower-http's own fields and the client's address, as throttling and
/// "last used" see it, or nothing when unknown.
#[derive(Clone)]
pub struct RequestSpan {
    trusted_proxies: Arc<[IpNet]>,
}

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<B>) -> Span {
        // Most of the time nobody listens: then finding the client costs
        // nothing either.
        if !tracing::enabled!(target: "tower_http::trace::make_span", Level::DEBUG) {
            return Span::none();
        }
        let client = client_addr::of_request(request.headers(), &self.trusted_proxies)
            .ok()
            .flatten();
        // The target and level of tower-http's default span, so that the
        // documented filter still shows the access log.
        tracing::span!(
            target: "tower_http::trace::make_span",
            Level::DEBUG,
            "request",
            method = %request.method(),
            uri = %loggable_uri(request.uri()),
            version = ?request.version(),
            client = client.map(tracing::field::display),
        )
    }
}

/// The address as the access log shows it: without the query of the pages
/// whose query can carry an app sign-in's user code (`/device?code=…`, and
/// the sign-in page returning there).
fn loggable_uri(uri: &axum::http::Uri) -> std::borrow::Cow<'_, str> {
    match uri.query() {
        Some(_) if matches!(uri.path(), "/device" | "/sign-in") => {
            format!("{}?<redacted>", uri.path()).into()
        }
        _ => uri.to_string().into(),
    }
}

/// CORS for the API only: pages, their assets and the health checks answer
/// no other origin. Outermost, so that every answer under the API's base
/// path carries it, a timeout's or an unknown address's too.
async fn cors_on_the_api(State(cors): State<CorsLayer>, request: Request, next: Next) -> Response {
    if !api::is_api_path(request.uri().path()) {
        return next.run(request).await;
    }
    match cors.layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}
