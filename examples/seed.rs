//! Fills a database with devices through the store (not over HTTP), for the
//! scale benchmark:
//!
//! ```sh
//! cargo run --release --example seed -- DATABASE_URL DEVICES CREDENTIALS_FILE [KNOWN]
//! ```
//!
//! Creates the account `bench@example.org` (synchronisation permission, a
//! random main password nobody needs), then DEVICES devices in bulk
//! transactions. The first KNOWN (default 10,000) get tokens whose
//! `id token` lines go to CREDENTIALS_FILE, created with mode 0600; the rest
//! get random digests. Prints what it did and how long it took.

use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use latchkey::credential::{DeviceId, Token, TokenDigest};
use latchkey::domain::{DeviceName, Permission, Timestamp};
use latchkey::service::{NewAccountRequest, Operator, Service, Settings};
use latchkey::store::NewDevice;

const BATCH: usize = 50_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, count, file, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: seed DATABASE_URL DEVICES CREDENTIALS_FILE [KNOWN]");
    };
    let count: usize = count.parse().context("DEVICES must be a number")?;
    let known: usize = match rest.first() {
        Some(n) => n.parse().context("KNOWN must be a number")?,
        None => 10_000,
    }
    .min(count);

    let store = latchkey::store::open(url, &Default::default()).await?;
    // Writes through the database only; it signs nothing.
    let service = Service::new(
        store.clone(),
        Settings::default(),
        &latchkey::credential::ServerKey::generate(),
    );
    let (account, _) = service
        .create_account(
            &Operator::at_the_command_line(),
            NewAccountRequest {
                email: "bench@example.org".into(),
                name: None,
                password: None,
                permissions: [Permission::Synchronisation].into_iter().collect(),
            },
        )
        .await?;

    let mut credentials = private_file(file)?;
    let name = DeviceName::parse("seeded")?;
    let started = Instant::now();
    // 12 random digits collide now and then among a million ids; the bulk
    // insert is all or nothing, so never offer it the same id twice.
    let mut used = std::collections::HashSet::with_capacity(count);
    let mut made = 0;
    while made < count {
        let size = BATCH.min(count - made);
        let mut batch = Vec::with_capacity(size);
        for i in made..made + size {
            let id = loop {
                let id = DeviceId::generate();
                if used.insert(id.clone()) {
                    break id;
                }
            };
            let digest = if i < known {
                let token = Token::generate();
                writeln!(credentials, "{id} {}", token.expose())?;
                token.digest()
            } else {
                TokenDigest(rand::random())
            };
            batch.push(NewDevice {
                id,
                account_id: account.id,
                name: name.clone(),
                device_type: "script".into(),
                token_digest: digest,
                created_at: Timestamp::now(),
                limits: Default::default(),
            });
        }
        store.insert_devices(&batch).await?;
        made += size;
    }
    credentials.flush()?;
    store.close().await;
    eprintln!(
        "seed: {count} devices ({known} with known tokens) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Creates the file readable by this user only, since it holds tokens.
fn private_file(path: &str) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .with_context(|| format!("cannot create {path}"))?;
    Ok(std::io::BufWriter::new(file))
}
