//! The real `latchkey serve` process: first start, and what survives SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use latchkey::credential::{DeviceId, Token};

const BINARY: &str = env!("CARGO_BIN_EXE_latchkey");

/// Starts `latchkey serve` on an ephemeral port; returns it and its address.
async fn start_server(data_dir: &str) -> (Child, String) {
    let mut server = Command::new(BINARY)
        .args(["--data-dir", data_dir, "serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("address=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("server exited before listening");
    })
    .await
    .expect("server starts");
    // Keep draining the logs so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (server, address)
}

/// Kills the server and returns everything it printed on standard output.
async fn kill(mut server: Child) -> String {
    server.start_kill().unwrap();
    server.wait().await.unwrap();
    let mut printed = String::new();
    server
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .await
        .unwrap();
    printed
}

#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_creates_an_administrator_once() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let (server, address) = start_server(data_dir).await;
    // The administrator is created before the server listens.
    let printed = kill(server).await;
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password in {printed:?}"))
        .to_owned();
    assert!(printed.contains("admin@localhost"));
    assert!(printed.contains("Change it now"));
    assert!(printed.contains(&format!("http://{address}/server/api/device")));

    let (server, address) = start_server(data_dir).await;
    let response = reqwest::Client::new()
        .post(format!("http://{address}/server/api/device"))
        .json(&json!({"email": "admin@localhost", "password": password, "deviceName": "first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let printed = kill(server).await;
    assert!(
        !printed.contains("password"),
        "second start printed {printed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_device_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();

    let mut create = Command::new(BINARY)
        .args([
            "--data-dir",
            data_dir,
            "user",
            "create",
            "--email",
            "a@example.org",
        ])
        .args(["--permission", "synchronisation", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(b"durable password\n")
        .await
        .unwrap();
    assert!(create.wait().await.unwrap().success());

    let (server, address) = start_server(data_dir).await;
    let response = reqwest::Client::new()
        .post(format!("http://{address}/server/api/device"))
        .json(&json!({"email": "a@example.org", "password": "durable password", "deviceName": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    kill(server).await; // SIGKILL: no graceful anything

    let store = latchkey::store::open(&format!("sqlite://{data_dir}/latchkey.db"))
        .await
        .unwrap();
    let id = DeviceId::parse(body["_id"].as_str().unwrap()).unwrap();
    let credential = store
        .credential(&id)
        .await
        .unwrap()
        .expect("device survived");
    let token = Token::parse(body["token"].as_str().unwrap()).unwrap();
    assert!(credential.digest.matches(&token.digest()));
    store.close().await;
}
