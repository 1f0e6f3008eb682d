//! Starts the real application in-process on port 0 with its own database,
//! on the backend the test names, and talks HTTP to it.
//!
//! Shared by the integration binary and `tests/postgres_outage`, each using a part of it.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use latchkey::app;
use latchkey::config::Config;
use latchkey::credential::{MainPassword, PasswordHasher};
use latchkey::domain::{Account, AccountId, Device, Permission, Permissions, WebSession};
use latchkey::service::{NewAccountRequest, Operator, Service, ServiceError};
use latchkey::store::{Serialise, StoreError};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The CLI's actor, for what tests set up directly.
pub const OPERATOR: Operator = Operator::at_the_command_line();

pub const PASSWORD: &str = "correct horse battery staple";

// What each main-password rule says when it refuses.
pub const TOO_SHORT: &str = "The password must have at least 12 characters.";
pub const TOO_LONG: &str = "The password must not be longer than 1024 bytes.";
pub const TOO_COMMON: &str =
    "This password is on a list of commonly used passwords. Choose another one.";
pub const CONTAINS_EMAIL: &str =
    "The password must not contain the part of the email address before '@'.";

/// A password breaking each rule, for an account whose email starts with
/// `local@`, and the message that names the rule.
pub fn breaking_each_rule(local: &str) -> Vec<(String, &'static str)> {
    vec![
        ("elevenchars".to_owned(), TOO_SHORT),
        ("x".repeat(1025), TOO_LONG),
        ("QwertyuiopAsdfg".to_owned(), TOO_COMMON),
        (
            format!("it is {} here", local.to_uppercase()),
            CONTAINS_EMAIL,
        ),
    ]
}

/// The database a test runs on; each test names its own (its `#[case]`s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend this test can have here. Without a PostgreSQL server, a
    /// PostgreSQL test says so loudly and runs on SQLite instead, unless
    /// `LATCHKEY_TEST_STRICT=1` (as in CI) makes that a failure.
    pub fn available(self) -> Backend {
        static REACHABLE: OnceLock<Result<(), String>> = OnceLock::new();
        match self {
            Backend::Sqlite => Backend::Sqlite,
            Backend::Postgres => match REACHABLE.get_or_init(postgres_reachable) {
                Ok(()) => Backend::Postgres,
                Err(e) if std::env::var("LATCHKEY_TEST_STRICT").as_deref() == Ok("1") => {
                    panic!("PostgreSQL is required (LATCHKEY_TEST_STRICT=1) but unreachable at {}: {e}", postgres_admin_url())
                }
                Err(e) => {
                    eprintln!("\n!!!!!!!! SKIPPING POSTGRESQL: {} unreachable ({e}); this test runs on SQLite instead !!!!!!!!\n", postgres_admin_url());
                    Backend::Sqlite
                }
            },
        }
    }
}

pub fn postgres_admin_url() -> String {
    std::env::var("LATCHKEY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn postgres_reachable() -> Result<(), String> {
    on_own_runtime(async {
        use sqlx::Connection;
        let conn = sqlx::PgConnection::connect(&postgres_admin_url())
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(())
    })
}

/// Runs a future to completion on a fresh runtime in another thread, so it
/// works from sync code and from inside a test's runtime alike.
fn on_own_runtime<T: Send + 'static>(
    future: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    })
    .join()
    .unwrap()
}

/// A database of a test's own: a file in a temporary directory, or a fresh
/// PostgreSQL database that is dropped with this value.
pub struct TestDatabase {
    /// The backend it is on: the one asked for, or SQLite in its place.
    pub backend: Backend,
    pub url: String,
    pub dir: TempDir,
    postgres_name: Option<String>,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend.available() {
            Backend::Sqlite => Self {
                backend: Backend::Sqlite,
                url: format!("sqlite://{}", dir.path().join("latchkey.db").display()),
                dir,
                postgres_name: None,
            },
            Backend::Postgres => {
                let name = format!("latchkey_test_{:016x}", rand::random::<u64>());
                let admin = postgres_admin_url();
                let create = format!("CREATE DATABASE {name}");
                on_own_runtime(async move {
                    use sqlx::{Connection, Executor};
                    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
                    conn.execute(create.as_str()).await.unwrap();
                    let _ = conn.close().await;
                });
                Self {
                    backend: Backend::Postgres,
                    url: with_database(&postgres_admin_url(), &name),
                    dir,
                    postgres_name: Some(name),
                }
            }
        }
    }
}

impl TestDatabase {
    /// Like [`TestDatabase::new`], but the database does not exist yet: a
    /// name nobody created on PostgreSQL (dropped with this value if
    /// something made it), a file not there yet on SQLite.
    pub async fn unborn(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend.available() {
            Backend::Sqlite => Self {
                backend: Backend::Sqlite,
                url: format!("sqlite://{}", dir.path().join("latchkey.db").display()),
                dir,
                postgres_name: None,
            },
            Backend::Postgres => {
                let name = format!("latchkey_test_{:016x}", rand::random::<u64>());
                Self {
                    backend: Backend::Postgres,
                    url: with_database(&postgres_admin_url(), &name),
                    dir,
                    postgres_name: Some(name),
                }
            }
        }
    }

    /// Everything the database holds, as named byte strings: its files on
    /// SQLite (WAL included); every row of every table, as text, on PostgreSQL.
    pub async fn contents(&self) -> Vec<(String, Vec<u8>)> {
        if self.postgres_name.is_none() {
            return std::fs::read_dir(self.dir.path())
                .unwrap()
                .map(|entry| {
                    let path = entry.unwrap().path();
                    (path.display().to_string(), std::fs::read(&path).unwrap())
                })
                .collect();
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut contents = Vec::new();
        for table in tables {
            // Row text shows bytea as hex; the raw bytes are checked too.
            let rows: Vec<String> =
                sqlx::query_scalar(&format!("SELECT t::TEXT FROM \"{table}\" t"))
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
            contents.push((table, rows.join("\n").into_bytes()));
        }
        let _ = conn.close().await;
        contents
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            on_own_runtime(async move {
                use sqlx::{Connection, Executor};
                if let Ok(mut conn) = sqlx::PgConnection::connect(&postgres_admin_url()).await {
                    if let Err(e) = conn.execute(drop.as_str()).await {
                        eprintln!("could not drop test database: {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        }
    }
}

/// The same server URL with another database name.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let server = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    format!("{server}/{name}{query}")
}

/// Everything every test app logged, so tests can look for leaked secrets.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

fn log_buffer() -> &'static Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace,hyper=debug,hyper_util=debug,h2=info,reqwest=debug")
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .try_init();
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct TestApp {
    /// The backend it runs on: the one asked for, or SQLite in its place.
    pub backend: Backend,
    pub base_url: String,
    pub database_url: String,
    /// Shared by every node of one test, as a deployment's nodes share it.
    pub secret_key_file: PathBuf,
    database: Option<TestDatabase>,
    pub service: Arc<Service>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let database = TestDatabase::new(backend).await;
    let (backend, url) = (database.backend, database.url.clone());
    let key = database.dir.path().join("secret.key");
    spawn_on(backend, Some(database), &url, key, adjust).await
}

/// Another node on `first`'s database, as a second server behind the same
/// load balancer would be.
pub async fn spawn_node(first: &TestApp, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(
        first.backend,
        None,
        &first.database_url,
        first.secret_key_file.clone(),
        adjust,
    )
    .await
}

async fn spawn_on(
    backend: Backend,
    database: Option<TestDatabase>,
    database_url: &str,
    secret_key_file: PathBuf,
    adjust: impl FnOnce(&mut Config),
) -> TestApp {
    log_buffer();
    let mut config = Config::new(database_url.to_owned());
    config.secret_key_file = secret_key_file;
    adjust(&mut config);
    let secret_key_file = config.secret_key_file.clone();
    let application = app::build(config).await.expect("app builds");
    let base_url = format!("http://{}", application.local_addr());
    let service = application.service();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        backend,
        base_url,
        database_url: database_url.to_owned(),
        secret_key_file,
        database,
        service,
        http: reqwest::Client::builder()
            .user_agent("latchkey-tests/1.0")
            .build()
            .unwrap(),
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// A device's credentials as the API handed them out.
#[derive(Clone, Debug)]
pub struct DeviceCredentials {
    pub id: String,
    pub token: String,
}

pub fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Creates an account through the domain service (which writes through the store).
    pub async fn create_account(&self, email: &str, permissions: &[Permission]) -> Account {
        let (account, _) = self
            .service
            .create_account(
                &OPERATOR,
                NewAccountRequest {
                    email: email.to_owned(),
                    name: None,
                    password: Some(PASSWORD.into()),
                    permissions: permissions.iter().copied().collect::<Permissions>(),
                },
            )
            .await
            .expect("account created");
        account
    }

    // What the CLI does, as the operator, for tests to set things up and look.

    pub async fn account(&self, id: AccountId) -> Result<Account, ServiceError> {
        self.service.account(&OPERATOR, id).await
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Account, ServiceError> {
        self.service.account_by_email(&OPERATOR, email).await
    }

    pub async fn accounts(&self) -> Result<Vec<Account>, ServiceError> {
        self.service.accounts(&OPERATOR, "").await
    }

    /// One account's devices, or everyone's.
    pub async fn devices(&self, owner: Option<AccountId>) -> Result<Vec<Device>, ServiceError> {
        match owner {
            Some(owner) => self.service.devices(&OPERATOR.over(owner)).await,
            None => self.service.devices(&OPERATOR).await,
        }
    }

    pub async fn set_enabled(&self, email: &str, enabled: bool) -> Result<Account, ServiceError> {
        let id = self.account_by_email(email).await?.id;
        self.service.set_enabled(&OPERATOR, id, enabled).await
    }

    pub async fn set_permission(
        &self,
        email: &str,
        permission: Permission,
        granted: bool,
    ) -> Result<Account, ServiceError> {
        let id = self.account_by_email(email).await?.id;
        self.service
            .set_permission(&OPERATOR, id, permission, granted)
            .await
    }

    pub async fn set_password(&self, email: &str, password: &str) -> Result<Account, ServiceError> {
        let id = self.account_by_email(email).await?.id;
        let (account, _) = self
            .service
            .reset_password(&OPERATOR, id, Some(password.into()))
            .await?;
        Ok(account)
    }

    /// Gives the account a main password set before today's rules (too
    /// short, common, ...), written straight to the store as an old server
    /// would have: no path that sets a password today takes it.
    pub async fn set_legacy_password(&self, email: &str, password: &str) {
        let id = self.account_by_email(email).await.unwrap().id;
        let password = MainPassword::candidate(password.into()).unwrap();
        let hash = PasswordHasher::new().hash(&password).await.unwrap();
        let mut tx = self
            .service
            .store()
            .begin_write(Serialise::Ordinary)
            .await
            .unwrap();
        assert!(tx.set_password_hash(id, &hash).await.unwrap());
        tx.commit().await.unwrap();
    }

    pub async fn sessions_of(&self, id: AccountId) -> Result<Vec<WebSession>, StoreError> {
        self.service.store().sessions_of(id).await
    }

    pub async fn create_member(&self, email: &str) -> Account {
        self.create_account(email, &[Permission::Synchronisation])
            .await
    }

    pub async fn post_device(&self, body: &Value) -> Response {
        self.http
            .post(self.url("/server/api/device"))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /server/api/device` with the test password; panics unless 201.
    pub async fn create_device(&self, email: &str, name: &str) -> DeviceCredentials {
        let response = self
            .post_device(&json!({"email": email, "password": PASSWORD, "deviceName": name}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        DeviceCredentials {
            id: body["_id"].as_str().unwrap().to_owned(),
            token: body["token"].as_str().unwrap().to_owned(),
        }
    }

    pub fn as_device(
        &self,
        method: reqwest::Method,
        path: &str,
        device: &DeviceCredentials,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .header("Authorization", basic(&device.id, &device.token))
    }

    /// A request on `/server/api/device/{target}`, authenticated as `device`.
    pub fn on_device(
        &self,
        method: reqwest::Method,
        target: &str,
        device: &DeviceCredentials,
    ) -> reqwest::RequestBuilder {
        self.as_device(method, &format!("/server/api/device/{target}"), device)
    }

    /// "Change password" on `target`, authenticated as `device`.
    pub fn change_password(
        &self,
        target: &str,
        device: &DeviceCredentials,
    ) -> reqwest::RequestBuilder {
        self.as_device(
            reqwest::Method::POST,
            &format!("/server/api/device/{target}/password"),
            device,
        )
    }

    /// Opens a connection and sends half a request, never the rest.
    pub async fn stalled_connection(&self) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let mut stream =
            tokio::net::TcpStream::connect(self.base_url.trim_start_matches("http://"))
                .await
                .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stream
    }

    pub async fn get_own_device(&self, device: &DeviceCredentials) -> Response {
        self.as_device(
            reqwest::Method::GET,
            &format!("/server/api/device/{}", device.id),
            device,
        )
        .send()
        .await
        .unwrap()
    }

    /// Stops the server the way SIGTERM would, waits for it, and hands back
    /// its database so the test can look at what was written.
    pub async fn stop(mut self) -> TestDatabase {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            tokio::time::timeout(Duration::from_secs(10), server)
                .await
                .expect("server stops within 10 s")
                .unwrap()
                .unwrap();
        }
        self.database.take().expect("database")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Asserts status and stable error code, and returns the body.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let actual = response.status();
    let headers = response.headers().clone();
    let body: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{actual}: body is not JSON: {e}"));
    assert_eq!(actual, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 10),
        "no message in {body}"
    );
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(
            headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"latchkey\"")
        );
    }
    body
}
