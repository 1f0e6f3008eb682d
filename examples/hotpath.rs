//! In-process cost of the pieces of an authenticated request, without HTTP:
//! `cargo run --release --example hotpath`. Single-threaded, so it shows the
//! work itself, not contention.

use std::time::Instant;

use base64::Engine;
use latchkey::credential::Secret;
use latchkey::domain::Permission;
use latchkey::service::{Client, NewAccountRequest, Operator, PasswordDeviceRequest};

const ROUNDS: u32 = 200_000;

fn report(what: &str, started: Instant) {
    println!(
        "{what:<34} {:>8.0} ns/op",
        started.elapsed().as_nanos() as f64 / f64::from(ROUNDS)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config =
        latchkey::config::Config::new(format!("sqlite://{}/latchkey.db", dir.path().display()));
    config.secret_key_file = dir.path().join("secret.key");
    let service = latchkey::app::build(config).await?.service();
    let client = Client {
        ip: Some("127.0.0.1".parse()?),
        user_agent: Some("hotpath/1.0".into()),
    };
    service
        .create_account(
            &Operator::at_the_command_line(),
            NewAccountRequest {
                email: "bench@example.org".into(),
                name: None,
                password: Some("bench password".into()),
                permissions: [Permission::Synchronisation].into_iter().collect(),
            },
        )
        .await?;
    let (device, token) = service
        .create_device_with_password(
            PasswordDeviceRequest {
                email: "bench@example.org".into(),
                password: "bench password".into(),
                device_name: "bench".into(),
                device_type: None,
                limits: Default::default(),
            },
            &client,
        )
        .await?;
    let id = device.id.to_string();
    let token = Secret::from(token.expose());
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{}", token.expose()))
    );
    // The first call fills the cache; everything below is the warm path.
    let who = service
        .authenticate(&id, &token, &client, latchkey::domain::Scope::Read)
        .await?;

    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(latchkey::http::basic::parse(header.as_bytes()).is_ok());
    }
    report("Basic header parse", started);

    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(
            service
                .authenticate(&id, &token, &client, latchkey::domain::Scope::Read)
                .await?,
        );
    }
    report("authenticate (warm cache)", started);

    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(service.device(&who, &id).await?);
    }
    report("own device resource", started);

    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(device.created_at.to_rfc3339());
    }
    report("one RFC 3339 timestamp", started);
    Ok(())
}
