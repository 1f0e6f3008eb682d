//! What every request meets before its route, in one tower layer with one
//! future, so that none of it costs an allocation on the way: oversize
//! requests refused at once ([`limits`](super::limits)), a body that may
//! come cut off at [`MAX_BODY_BYTES`], the request deadline, and the
//! headers every answer carries.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use http_body::Body as _;
use http_body_util::Limited;
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::error::ApiError;
use super::{limits, web, MAX_BODY_BYTES};

// Checked at compile time: `from_static` outside a constant checks its
// bytes on every call.
const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

#[derive(Clone, Copy, Debug)]
pub struct FrontLayer {
    pub request_timeout: Duration,
}

impl<S> Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            request_timeout: self.request_timeout,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Front<S> {
    inner: S,
    request_timeout: Duration,
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // hyper knows from the head whether a body follows.
        let has_body = !request.body().is_end_stream();
        if let Some(what) = limits::too_large(&request, has_body) {
            // Rare, and rendering a page: the one place worth a box.
            let uri = request.uri().clone();
            return FrontFuture::Refused {
                future: Box::pin(async move { web::too_large(&uri, what).await }),
            };
        }
        // A declared length was judged above; a body sent without one
        // (chunked) is cut off as it arrives. Most requests have none, and
        // pay nothing for this: axum's `DefaultBodyLimit` would cost every
        // request an extension.
        if has_body {
            request = request.map(|body| Body::new(Limited::new(body, MAX_BODY_BYTES)));
        }
        FrontFuture::Routed {
            future: self.inner.call(request),
            deadline: None,
            request_timeout: self.request_timeout,
        }
    }
}

pin_project! {
    #[project = FrontProjection]
    pub enum FrontFuture<F> {
        Refused { future: Pin<Box<dyn Future<Output = Response> + Send>> },
        // The deadline's timer starts when the route first has to wait:
        // most answers are ready at once, and never need one. Boxed, so
        // that the future every request moves around stays small.
        Routed {
            #[pin] future: F,
            deadline: Option<Pin<Box<tokio::time::Sleep>>>,
            request_timeout: Duration,
        },
    }
}

impl<F> Future for FrontFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = match self.project() {
            FrontProjection::Refused { future } => ready!(future.as_mut().poll(cx)),
            FrontProjection::Routed {
                future,
                deadline,
                request_timeout,
            } => match future.poll(cx) {
                Poll::Ready(Ok(response)) => response,
                Poll::Ready(Err(never)) => match never {},
                Poll::Pending => {
                    let sleep = deadline
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(*request_timeout)));
                    ready!(sleep.as_mut().poll(cx));
                    ApiError::request_timeout().into_response()
                }
            },
        };
        let headers = response.headers_mut();
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
        // Answers may carry a token shown once; no cache may keep them.
        // Only the content-addressed assets say otherwise.
        // Not `entry`, which costs more than the two lookups.
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, NO_STORE);
        }
        Poll::Ready(Ok(response))
    }
}
