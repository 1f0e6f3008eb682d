//! The routes a fleet calls on every request: a device's start-up check
//! (`GET /server/api/device/{id}`), forward auth and `/healthz`, answered
//! without going through the router.
//!
//! The router gives every request it routes a percent-decoded copy of each
//! path parameter, its matched path and its original URI as extensions
//! (several allocations, and a map to drop), then calls the route through
//! a boxed, cloned service and three future adapters: about 3,000
//! instructions a request, a tenth of the device route's whole cost
//! (bench/instructions.sh). These routes need none of it. And a caller
//! the cache can prove (nearly every call) is answered before any future
//! exists: only the rest, which have to wait for the store, get a boxed
//! one (see [`Service::authenticate_warm`](crate::service::Service::authenticate_warm)).
//! Each is still
//! on the router, which answers everything this module does not take
//! (and everything when CORS is configured, see `app_service`), and the
//! answers are the same either way: a test compares them.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::{api, authz, AppState};

/// Where a device's own resource lives; its id follows.
const DEVICE_PATH: &str = "/server/api/device/";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Health,
    Device,
    AuthRequest,
    ForwardAuth,
}

/// The hot route a request takes, if any. Only what the router would send
/// to the same handler with the same inputs: `GET` for the device and the
/// health check (`HEAD` and the rest get the router's answers), any method
/// for forward auth (its routes take any), and a device id only as digits,
/// which no other route under the device path has and which percent-decoding
/// leaves as they are.
fn recognise(method: &Method, path: &str) -> Option<Route> {
    match path {
        "/server/authz/auth-request" => Some(Route::AuthRequest),
        "/server/authz/forward-auth" => Some(Route::ForwardAuth),
        _ if method != Method::GET => None,
        "/healthz" => Some(Route::Health),
        _ => path
            .strip_prefix(DEVICE_PATH)
            .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
            .map(|_| Route::Device),
    }
}

/// The device id of a path [`recognise`] took for [`Route::Device`].
pub(super) fn device_id(path: &str) -> &str {
    &path[DEVICE_PATH.len()..]
}

/// The router, with the hot routes taken before it.
#[derive(Clone)]
pub struct HotRoutes<S> {
    inner: S,
    state: AppState,
}

impl<S> HotRoutes<S> {
    pub fn new(inner: S, state: AppState) -> Self {
        Self { inner, state }
    }
}

/// An answer that has to wait (for the store): boxed, since it is rare.
pub(super) type Answer = Pin<Box<dyn Future<Output = Response> + Send>>;

/// A hot route's answer: most are ready when the request arrives.
pub(super) enum HotAnswer {
    Ready(Response),
    Later(Answer),
}

pin_project! {
    #[project = HotProjection]
    pub enum HotFuture<F> {
        Ready { response: Option<Response> },
        Later { future: Answer },
        Routed { #[pin] future: F },
    }
}

impl<F> Future for HotFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            // Taken once: nothing polls a future again after its answer.
            HotProjection::Ready { response } => match response.take() {
                Some(response) => Poll::Ready(Ok(response)),
                None => Poll::Pending,
            },
            HotProjection::Later { future } => future.as_mut().poll(cx).map(Ok),
            HotProjection::Routed { future } => future.poll(cx),
        }
    }
}

impl<S> Service<Request> for HotRoutes<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = HotFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some(route) = recognise(request.method(), request.uri().path()) else {
            return HotFuture::Routed {
                future: self.inner.call(request),
            };
        };
        let answer = match route {
            Route::Health => HotAnswer::Ready("ok".into_response()),
            Route::Device => api::show_device(&self.state, request),
            Route::AuthRequest => authz::hot(&self.state, request, true),
            Route::ForwardAuth => authz::hot(&self.state, request, false),
        };
        match answer {
            HotAnswer::Ready(response) => HotFuture::Ready {
                response: Some(response),
            },
            HotAnswer::Later(future) => HotFuture::Later { future },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_what_the_router_would_send_to_the_same_handler() {
        let get = Method::GET;
        assert_eq!(recognise(&get, "/healthz"), Some(Route::Health));
        assert_eq!(
            recognise(&get, "/server/api/device/123456789012"),
            Some(Route::Device)
        );
        assert_eq!(recognise(&get, "/server/api/device/1"), Some(Route::Device));
        for method in [Method::GET, Method::POST, Method::HEAD, Method::DELETE] {
            assert_eq!(
                recognise(&method, "/server/authz/auth-request"),
                Some(Route::AuthRequest)
            );
            assert_eq!(
                recognise(&method, "/server/authz/forward-auth"),
                Some(Route::ForwardAuth)
            );
        }
        for (method, path) in [
            // Other methods have other handlers, or the router's 405.
            (Method::HEAD, "/healthz"),
            (Method::POST, "/healthz"),
            (Method::HEAD, "/server/api/device/123456789012"),
            (Method::PATCH, "/server/api/device/123456789012"),
            (Method::DELETE, "/server/api/device/123456789012"),
            // Static routes and other shapes under the device path.
            (Method::GET, "/server/api/device/authorize"),
            (Method::GET, "/server/api/device/"),
            (Method::GET, "/server/api/device"),
            (Method::GET, "/server/api/device/123/"),
            (Method::GET, "/server/api/device/123/password"),
            (Method::GET, "/server/api/device/%31%32"),
            (Method::GET, "/server/api/device/12a"),
            (Method::GET, "/server/api/device/-12"),
            (Method::GET, "/healthz/"),
            (Method::GET, "/server/authz/forward-auth/"),
            (Method::GET, "/server/authz/"),
            (Method::GET, "//server/api/device/123"),
        ] {
            assert_eq!(recognise(&method, path), None, "{method} {path}");
        }
    }
}
