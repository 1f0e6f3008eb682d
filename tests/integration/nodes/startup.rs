//! Nodes started together, as an orchestrator starts replicas: every one
//! comes up, and exactly one of them makes the first administrator.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use latchkey::domain::Permission;
use rstest::rstest;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Barrier;

use crate::helpers::{Backend, TestDatabase};

const NODES: usize = 4;

/// Starts `latchkey serve` once per node, all at the same moment, and
/// waits until each listens; panics with its output if one exits instead.
async fn start_together(database_url: &str, key_file: &str) -> Vec<Child> {
    let barrier = Arc::new(Barrier::new(NODES));
    let starting: Vec<_> = (0..NODES)
        .map(|node| {
            let barrier = barrier.clone();
            let url = database_url.to_owned();
            let key_file = key_file.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut server = Command::new(env!("CARGO_BIN_EXE_latchkey"))
                    .args(["--database-url", &url, "serve", "--listen", "127.0.0.1:0"])
                    .args(["--secret-key-file", &key_file])
                    .env("LATCHKEY_LOG", "info")
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .unwrap();
                let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
                let mut logged = String::new();
                let listening = tokio::time::timeout(Duration::from_secs(30), async {
                    while let Some(line) = lines.next_line().await.unwrap() {
                        logged.push_str(&line);
                        logged.push('\n');
                        if line.contains("latchkey is listening") {
                            return true;
                        }
                    }
                    false
                })
                .await
                .expect("the node starts or exits within 30 s");
                assert!(listening, "node {node} exited:\n{logged}");
                // Keep draining, so the server never blocks on a full pipe.
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                server
            })
        })
        .collect();
    let mut servers = Vec::new();
    for node in starting {
        servers.push(node.await.unwrap());
    }
    servers
}

/// Stops the nodes; returns how many printed a first administrator's password.
async fn passwords_printed(servers: Vec<Child>) -> usize {
    let mut printed = 0;
    for mut server in servers {
        server.start_kill().unwrap();
        server.wait().await.unwrap();
        let mut out = String::new();
        server
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .await
            .unwrap();
        printed += out
            .lines()
            .filter(|l| l.trim().starts_with("password: "))
            .count();
    }
    printed
}

/// Exactly one account, an administrator with synchronisation.
async fn assert_one_administrator(database_url: &str) {
    let store = latchkey::store::open_existing(database_url).await.unwrap();
    let accounts = store.accounts().await.unwrap();
    store.close().await;
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0].email.as_str(), "admin@localhost");
    assert!(accounts[0].permissions.contains(Permission::Admin));
    assert!(accounts[0]
        .permissions
        .contains(Permission::Synchronisation));
}

async fn all_come_up_with_one_administrator(database: &TestDatabase) {
    // One key file for all, as a deployment shares it; the first to start
    // creates it.
    let key_file = database.dir.path().join("shared/secret.key");
    let servers = start_together(&database.url, key_file.to_str().unwrap()).await;
    assert_eq!(passwords_printed(servers).await, 1);
    assert_one_administrator(&database.url).await;
    // A node with a key of its own refuses to start, and says why.
    let other_key = database.dir.path().join("other/secret.key");
    let refused = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args([
            "--database-url",
            &database.url,
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(["--secret-key-file", other_key.to_str().unwrap()])
        .kill_on_drop(true)
        .output();
    let refused = tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .expect("the node exits")
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("secret key") && stderr.contains("same key file"),
        "{stderr}"
    );
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn nodes_started_together_on_a_database_not_yet_created_all_come_up(
    #[case] backend: Backend,
) {
    let database = TestDatabase::unborn(backend).await;
    if database.backend != Backend::Postgres {
        eprintln!("SKIPPED: several nodes need PostgreSQL");
        return;
    }
    all_come_up_with_one_administrator(&database).await;
}

#[rstest]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn nodes_started_together_on_an_empty_database_all_come_up(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    if database.backend != Backend::Postgres {
        eprintln!("SKIPPED: several nodes need PostgreSQL");
        return;
    }
    all_come_up_with_one_administrator(&database).await;
}

/// SQLite: several processes on one file, the file not there yet.
#[rstest]
#[case::sqlite()]
#[tokio::test(flavor = "multi_thread")]
async fn servers_started_together_on_one_new_sqlite_file_make_one_administrator() {
    let database = TestDatabase::new(Backend::Sqlite).await;
    all_come_up_with_one_administrator(&database).await;
}
