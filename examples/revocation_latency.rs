//! Revocation-to-refusal latency between two nodes on one PostgreSQL:
//!
//! ```sh
//! cargo run --release --example revocation_latency -- DATABASE_URL NODE_A NODE_B [ROUNDS]
//! ```
//!
//! NODE_A and NODE_B are base URLs of two `latchkey serve` processes on
//! DATABASE_URL. Devices are created through the store; then, ROUNDS times
//! (default 200): node B serves a device (its cache is warm), node A
//! deletes it over the API, and node B is asked again and again until it
//! refuses. The time from A's answer to B's first refusal is reported as
//! p50, p99 and max.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use latchkey::credential::{DeviceId, Token};
use latchkey::domain::{DeviceName, Permission, Timestamp};
use latchkey::service::{NewAccountRequest, Operator, Service, Settings};
use latchkey::store::NewDevice;
use reqwest::StatusCode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, node_a, node_b, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: revocation_latency DATABASE_URL NODE_A NODE_B [ROUNDS]");
    };
    let rounds: usize = match rest.first() {
        Some(n) => n.parse().context("ROUNDS must be a number")?,
        None => 200,
    };

    let store = latchkey::store::open(url, &Default::default()).await?;
    // Works beside the nodes through the database only; it signs nothing.
    let service = Service::new(
        store.clone(),
        Settings::default(),
        &latchkey::credential::ServerKey::generate(),
    );
    let (account, _) = service
        .create_account(
            &Operator::at_the_command_line(),
            NewAccountRequest {
                email: "revocations@example.org".into(),
                name: None,
                password: None,
                permissions: [Permission::Synchronisation].into_iter().collect(),
            },
        )
        .await?;
    let mut devices = Vec::new();
    let mut batch = Vec::new();
    for _ in 0..=rounds {
        let (id, token) = (DeviceId::generate(), Token::generate());
        batch.push(NewDevice {
            id: id.clone(),
            account_id: account.id,
            name: DeviceName::parse("revoked")?,
            device_type: "script".into(),
            token_digest: token.digest(),
            created_at: Timestamp::now(),
            limits: Default::default(),
        });
        devices.push((id.to_string(), token.expose().to_owned()));
    }
    store.insert_devices(&batch).await?;
    store.close().await;
    let (keeper_id, keeper_token) = devices.pop().expect("one device more than rounds");

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(4)
        .build()?;
    let get = |node: &str, id: &str, token: &str| {
        http.get(format!("{node}/server/api/device/{id}"))
            .basic_auth(id, Some(token))
            .send()
    };
    let mut latencies = Vec::with_capacity(rounds);
    for (id, token) in &devices {
        let warm = get(node_b, id, token).await?.status();
        ensure!(
            warm == StatusCode::OK,
            "node B answered {warm} before the revocation"
        );
        let deleted = http
            .delete(format!("{node_a}/server/api/device/{id}"))
            .basic_auth(&keeper_id, Some(&keeper_token))
            .send()
            .await?
            .status();
        ensure!(
            deleted.is_success(),
            "node A answered {deleted} to the delete"
        );
        let revoked_at = Instant::now();
        loop {
            let status = get(node_b, id, token).await?.status();
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            ensure!(status == StatusCode::OK, "node B answered {status}");
            ensure!(
                revoked_at.elapsed() < Duration::from_secs(10),
                "node B still accepts a device deleted 10 s ago"
            );
        }
        latencies.push(revoked_at.elapsed());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "revocations={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2}",
        latencies.len(),
        ms(at(0.50)),
        ms(at(0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}
