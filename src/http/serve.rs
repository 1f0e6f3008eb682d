//! The accept loop. `axum::serve` sets no header-read timeout, so a client
//! could hold a connection open forever by sending half a request; this loop
//! uses hyper directly with a timer, and drains connections on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;

use super::App;
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tower::Service;

use super::coarse_timer::CoarseTimer;
use super::limits::HYPER_MAX_HEAD_BYTES;

tokio::task_local! {
    /// The TCP peer of the connection a request came on, for
    /// [`client_addr`](super::client_addr). Not a request extension
    /// (axum's `ConnectInfo`): that would cost every request an insert into
    /// a map which then has to grow, about 800 instructions.
    static PEER: SocketAddr;
}

/// The TCP peer of the connection the current request came on, when it is
/// served by [`serve`].
pub(super) fn peer() -> Option<SocketAddr> {
    PEER.try_with(|peer| *peer).ok()
}

/// HTTP/2's connection preface: a client speaking HTTP/2 without TLS
/// (prior knowledge) starts with it.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum Version {
    Http1,
    Http2,
}

/// Which HTTP the client speaks, if it sends enough to tell within
/// `limit`; read without taking the bytes, so hyper reads them again.
/// Decided here rather than by hyper-util's automatic builder, which waits
/// for them with no time limit (a client that connected and sent nothing
/// held its connection, and a file descriptor, forever) and then reads
/// every request of the connection through one more layer.
async fn speaks_within(stream: &TcpStream, limit: Duration) -> Option<Version> {
    let decided = async {
        let mut start = [0u8; H2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut start).await.ok()?;
            if n == 0 {
                return None;
            }
            if !H2_PREFACE.starts_with(&start[..n]) {
                return Some(Version::Http1);
            }
            if n == start.len() {
                return Some(Version::Http2);
            }
            // So far a part of the preface (or of "POST"): nearly always
            // the rest is already on its way.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(limit, decided).await.ok().flatten()
}

/// Serves `router` until `shutdown` completes; then waits up to `grace` for
/// open connections to finish before closing them. A client must send each
/// request's head within `header_read_timeout` (give or take a quarter
/// second) of when the server starts waiting for it.
pub async fn serve(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    header_read_timeout: Duration,
) {
    let mut http1 = http1::Builder::new();
    // hyper's head buffer stays above the application's limit (see
    // `limits`), so that the application answers heads too large, with a
    // body: hyper's own answers have none. The number of header fields is
    // left at hyper's default, which is the application's limit (100):
    // any other value makes hyper allocate and fill an array that size for
    // every request (bench/instructions.sh: about 2,400 instructions, a
    // tenth of `/healthz`), so more fields get hyper's bare 431.
    http1
        .timer(CoarseTimer::start())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(HYPER_MAX_HEAD_BYTES);
    let mut http2 = http2::Builder::new(TokioExecutor::new());
    http2
        .timer(TokioTimer::new())
        .max_header_list_size(HYPER_MAX_HEAD_BYTES as u32);
    let builders = Arc::new((http1, http2));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // The app is always ready (axum's router's `poll_ready` is `Ready`
        // at once, and the layers around it ask it), so it is called
        // straight away, without `oneshot`'s state machine around it.
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let request = request.map(Body::new);
            let future = match &app {
                App::Direct(_) => app.clone().call(request),
                // The access log's span, made in the call, wants it too.
                _ => PEER.sync_scope(peer, || app.clone().call(request)),
            };
            PEER.scope(peer, future)
        });
        // Watched from here on, so that a shutdown waits for it (at most
        // the header-read timeout, then it is served or closed).
        let watcher = graceful.watcher();
        let builders = builders.clone();
        tokio::spawn(async move {
            let (http1, http2) = &*builders;
            let io = TokioIo::new(stream);
            let ended = match speaks_within(io.inner(), header_read_timeout).await {
                // No upgrades: nothing here speaks WebSocket.
                Some(Version::Http1) => watcher.watch(http1.serve_connection(io, service)).await,
                Some(Version::Http2) => watcher.watch(http2.serve_connection(io, service)).await,
                None => return,
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(?grace, "connections still open after the shutdown grace period; closing them");
        }
    }
}
