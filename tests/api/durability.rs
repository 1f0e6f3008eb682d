//! What the server acknowledged survives the process being killed right after.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use latchkey::credential::{DeviceId, Token};

#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_device_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let binary = env!("CARGO_BIN_EXE_latchkey");
    let data_dir = dir.path().to_str().unwrap();

    let mut create = Command::new(binary)
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

    let mut server = Command::new(binary)
        .args(["--data-dir", data_dir, "serve", "--listen", "127.0.0.1:0"])
        .env("LATCHKEY_LOG", "info")
        .stdout(Stdio::null())
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

    let response = reqwest::Client::new()
        .post(format!("http://{address}/server/api/device"))
        .json(&serde_json::json!({"email": "a@example.org", "password": "durable password", "deviceName": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    server.start_kill().unwrap(); // SIGKILL: no graceful anything
    let body: Value = response.json().await.unwrap();
    server.wait().await.unwrap();

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
