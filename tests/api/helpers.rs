//! Starts the real application in-process on port 0 with its own database,
//! and talks HTTP to it.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use latchkey::app;
use latchkey::config::Config;
use latchkey::domain::{Account, NewAccountRequest, Permission, Permissions, Service};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PASSWORD: &str = "correct horse battery staple";

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
    pub base_url: String,
    pub database_url: String,
    data_dir: Option<TempDir>,
    pub service: Arc<Service>,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    log_buffer();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let database_url = format!("sqlite://{}", data_dir.path().join("latchkey.db").display());
    let mut config = Config::new(database_url.clone());
    adjust(&mut config);
    let application = app::build(config).await.expect("app builds");
    let base_url = format!("http://{}", application.local_addr());
    let service = application.service();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        base_url,
        database_url,
        data_dir: Some(data_dir),
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
            .create_account(NewAccountRequest {
                email: email.to_owned(),
                name: None,
                password: Some(PASSWORD.to_owned()),
                permissions: permissions.iter().copied().collect::<Permissions>(),
            })
            .await
            .expect("account created");
        account
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
    /// the data directory so the test can look at what was written.
    pub async fn stop(mut self) -> TempDir {
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
        self.data_dir.take().expect("data dir")
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
