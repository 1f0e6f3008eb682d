//! The real `latchkey serve` process: first start, and what survives SIGKILL.

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use latchkey::credential::{DeviceId, Token};
use rstest::rstest;

use crate::helpers::{Backend, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_latchkey");

/// Starts `latchkey serve` on an ephemeral port; returns it and its address.
/// The key file lives in the database's temporary directory, not in the
/// working directory.
async fn start_server(database: &TestDatabase) -> (Child, String) {
    let database_url = database.url.as_str();
    let key_file = database.dir.path().join("secret.key");
    let mut server = Command::new(BINARY)
        .args([
            "--database-url",
            database_url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--secret-key-file")
        .arg(&key_file)
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

/// `latchkey user create` with the synchronisation permission and a password on stdin.
async fn create_member(database_url: &str, email: &str, password: &str) {
    let mut create = Command::new(BINARY)
        .args([
            "--database-url",
            database_url,
            "user",
            "create",
            "--email",
            email,
        ])
        .args(["--permission", "synchronisation", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = create.stdin.take().unwrap();
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    assert!(create.wait().await.unwrap().success());
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

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn the_first_start_creates_an_administrator_once(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let (server, address) = start_server(&database).await;
    // The administrator is created before the server listens.
    let printed = kill(server).await;
    let password = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the first start prints a password")
        .to_owned();
    assert!(printed.contains("admin@localhost"));
    assert!(printed.contains("Change it now"));
    assert!(printed.contains(&format!("http://{address}/server/api/device")));

    let (server, address) = start_server(&database).await;
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
        "the second start printed a password again"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn an_acknowledged_device_survives_sigkill(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let data_dir = database.url.as_str();

    create_member(data_dir, "a@example.org", "durable password").await;

    let (server, address) = start_server(&database).await;
    let response = reqwest::Client::new()
        .post(format!("http://{address}/server/api/device"))
        .json(&json!({"email": "a@example.org", "password": "durable password", "deviceName": "kept"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    kill(server).await; // SIGKILL: no graceful anything

    let store = latchkey::store::open(data_dir, &Default::default())
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

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_drains_and_writes_pending_last_use(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let data_dir = database.url.as_str();
    let (server, address) = start_server(&database).await;
    let password = "member password";
    create_member(data_dir, "m@example.org", password).await;
    let http = reqwest::Client::new();
    let body: Value = http
        .post(format!("http://{address}/server/api/device"))
        .json(&json!({"email": "m@example.org", "password": password, "deviceName": "d"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (id, token) = (
        body["_id"].as_str().unwrap(),
        body["token"].as_str().unwrap(),
    );
    let used = http
        .get(format!("http://{address}/server/api/device/{id}"))
        .basic_auth(id, Some(token))
        .header("User-Agent", "sigterm-test")
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), StatusCode::OK);

    let pid = server.id().unwrap().to_string();
    let signalled = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());
    let mut server = server;
    let status = tokio::time::timeout(Duration::from_secs(15), server.wait())
        .await
        .expect("stops after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");

    let store = latchkey::store::open(data_dir, &Default::default())
        .await
        .unwrap();
    let device = store
        .device(&DeviceId::parse(id).unwrap())
        .await
        .unwrap()
        .unwrap();
    let last_use = device.last_used.expect("written at shutdown");
    assert_eq!(last_use.user_agent.as_deref(), Some("sigterm-test"));
    store.close().await;
}
