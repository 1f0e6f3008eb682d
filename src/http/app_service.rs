//! The whole HTTP surface as one service, for [`serve`](super::serve).
//!
//! The front layer wraps the router from outside. Layered onto the router
//! (`Router::layer`), axum would wrap every route in one more boxed service,
//! which each request clones, calls and polls through a boxed future: about
//! 400 instructions a request (bench/instructions.sh). Only with CORS, which
//! answers for API paths alone and has to be outermost (a timeout's answer
//! carries it too), is everything layered onto the router, and the hot
//! routes ([`hot_routes`](super::hot_routes)) left to it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use axum::routing::future::RouteFuture;
use axum::Router;
use pin_project_lite::pin_project;
use tower::Service;

use super::front::{Front, FrontFuture};
use super::hot_routes::{HotFuture, HotRoutes};

type Traced = tower_http::trace::Trace<
    Front<HotRoutes<Router>>,
    tower_http::classify::SharedClassifier<tower_http::classify::ServerErrorsAsFailures>,
    super::RequestSpan,
>;

#[derive(Clone)]
pub enum App {
    Direct(Front<HotRoutes<Router>>),
    /// With the access log around it (`tower_http=debug`).
    Traced(Traced),
    /// With CORS: the front layer (and the access log) as router layers.
    Layered(Router),
}

pin_project! {
    #[project = AppProjection]
    pub enum AppFuture {
        Direct { #[pin] future: FrontFuture<HotFuture<RouteFuture<Infallible>>> },
        // Only while the access log is on: a box is no matter then.
        Traced { future: Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>> },
        Layered { #[pin] future: RouteFuture<Infallible> },
    }
}

impl Future for AppFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AppProjection::Direct { future } => future.poll(cx),
            AppProjection::Traced { future } => future.as_mut().poll(cx),
            AppProjection::Layered { future } => future.poll(cx),
        }
    }
}

impl Service<Request> for App {
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        match self {
            App::Direct(front) => front.poll_ready(cx),
            App::Traced(traced) => traced.poll_ready(cx),
            App::Layered(router) => Service::<Request>::poll_ready(router, cx),
        }
    }

    fn call(&mut self, request: Request) -> AppFuture {
        match self {
            App::Direct(front) => AppFuture::Direct {
                future: front.call(request),
            },
            App::Traced(traced) => {
                let future = traced.call(request);
                AppFuture::Traced {
                    future: Box::pin(async move {
                        let response = future.await?;
                        Ok(response.map(Body::new))
                    }),
                }
            }
            App::Layered(router) => AppFuture::Layered {
                future: router.call(request),
            },
        }
    }
}
