//! A bare axum hello-world on the same stack (tokio, hyper, axum) and the
//! same release profile as latchkey: the physical limit the benchmarks
//! compare latchkey's routes against. `cargo run --release --example hello
//! -- 127.0.0.1:8081`; `TOKIO_WORKER_THREADS=1` for one worker, as
//! `bench/instructions.sh` runs it.
//!
//! `GET /forward` answers as forward auth does, with six identity headers
//! (fixed ones, checking nothing): the stack's own cost for a proxy's
//! request and such an answer, which forward auth's figures are also
//! compared against.

use axum::http::{HeaderName, HeaderValue};
use axum::routing::get;
use axum::Router;

const IDENTITY: [(HeaderName, HeaderValue); 6] = [
    (
        HeaderName::from_static("remote-user"),
        HeaderValue::from_static("bench@example.org"),
    ),
    (
        HeaderName::from_static("remote-email"),
        HeaderValue::from_static("bench@example.org"),
    ),
    (
        HeaderName::from_static("remote-name"),
        HeaderValue::from_static(""),
    ),
    (
        HeaderName::from_static("remote-groups"),
        HeaderValue::from_static("synchronisation"),
    ),
    (
        HeaderName::from_static("remote-credential"),
        HeaderValue::from_static("device:123456789012"),
    ),
    (
        HeaderName::from_static("remote-scope"),
        HeaderValue::from_static("full"),
    ),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("hello is listening on {}", listener.local_addr()?);
    let app = Router::new()
        .route("/", get(|| async { "Hello, World!" }))
        .route("/forward", get(|| async { (IDENTITY, "") }));
    axum::serve(listener, app).await?;
    Ok(())
}
