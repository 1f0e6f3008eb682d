//! A bare axum hello-world on the same stack (tokio, hyper, axum) and the
//! same release profile as latchkey: the physical limit the benchmarks
//! compare latchkey's routes against. `cargo run --release --example hello
//! -- 127.0.0.1:8081`; `TOKIO_WORKER_THREADS=1` for one worker, as
//! `bench/instructions.sh` runs it.

use axum::routing::get;
use axum::Router;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8081".to_owned());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("hello is listening on {}", listener.local_addr()?);
    let app = Router::new().route("/", get(|| async { "Hello, World!" }));
    axum::serve(listener, app).await?;
    Ok(())
}
