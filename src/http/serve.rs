//! The accept loop. `axum::serve` sets no header-read timeout, so a client
//! could hold a connection open forever by sending half a request; this loop
//! uses hyper directly with a timer, and drains connections on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
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

/// HTTP/2's connection preface, by which hyper tells the two versions apart.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the client sends, within `limit`, enough to tell which HTTP it
/// speaks. hyper reads that with no time limit at all, before its own
/// header-read timeout starts: a client that connected and sent nothing
/// would hold its connection, and a file descriptor, forever.
async fn speaks_within(stream: &TcpStream, limit: Duration) -> bool {
    let decided = async {
        let mut start = [0u8; H2_PREFACE.len()];
        loop {
            let n = stream.peek(&mut start).await.ok()?;
            if n == 0 {
                return None;
            }
            if n == start.len() || !H2_PREFACE.starts_with(&start[..n]) {
                return Some(());
            }
            // So far a part of the preface (or of "POST"): nearly always
            // the rest is already on its way.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    matches!(tokio::time::timeout(limit, decided).await, Ok(Some(())))
}

/// Serves `router` until `shutdown` completes; then waits up to `grace` for
/// open connections to finish before closing them. A client must send each
/// request's head within `header_read_timeout` (give or take a quarter
/// second) of when the server starts waiting for it.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    header_read_timeout: Duration,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    // hyper's head buffer stays above the application's limit (see
    // `limits`), so that the application answers heads too large, with a
    // body: hyper's own answers have none. The number of header fields is
    // left at hyper's default, which is the application's limit (100):
    // any other value makes hyper allocate and fill an array that size for
    // every request (bench/instructions.sh: about 2,400 instructions, a
    // tenth of `/healthz`), so more fields get hyper's bare 431.
    builder
        .http1()
        .timer(CoarseTimer::start())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(HYPER_MAX_HEAD_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(HYPER_MAX_HEAD_BYTES as u32);
    let builder = Arc::new(builder);
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
        let router = router.clone();
        // The router is always ready (axum's `poll_ready` is `Ready` at
        // once), so it is called straight away, without `oneshot`'s state
        // machine around it.
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            PEER.scope(peer, router.clone().call(request))
        });
        // Watched from here on, so that a shutdown waits for it (at most
        // the header-read timeout, then it is served or closed).
        let watcher = graceful.watcher();
        let builder = builder.clone();
        tokio::spawn(async move {
            if !speaks_within(&stream, header_read_timeout).await {
                return;
            }
            let connection = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
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
