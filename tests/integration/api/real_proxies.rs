//! Forward auth through real nginx and Caddy, configured with the very blocks
//! `docs/forward-auth.md` gives (only the ports changed), in front of an
//! upstream that echoes the headers it received. Each proxy runs as a child
//! process on loopback with its own prefix directory, and is killed on drop.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::Json;
use reqwest::{Method, StatusCode};
use rstest::rstest;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{basic, spawn_app_with, Backend, DeviceCredentials, TestApp, PASSWORD};

const NGINX: &str = "/usr/sbin/nginx";
const CADDY: &str = "/usr/bin/caddy";
const DOCS: &str = include_str!("../../../docs/forward-auth.md");
const IDENTITY: [&str; 6] = [
    "remote-user",
    "remote-email",
    "remote-name",
    "remote-groups",
    "remote-credential",
    "remote-scope",
];

#[derive(Clone, Copy, Debug)]
enum Proxy {
    Nginx,
    Caddy,
}

impl Proxy {
    fn binary(self) -> &'static str {
        match self {
            Proxy::Nginx => NGINX,
            Proxy::Caddy => CADDY,
        }
    }

    /// Whether this proxy can run here. Prints a loud SKIP when not, and
    /// fails instead under LATCHKEY_TEST_STRICT=1.
    fn available(self, test: &str) -> bool {
        if Path::new(self.binary()).exists() {
            return true;
        }
        let message = format!(
            "{test}: {} missing (apt-get install nginx caddy)",
            self.binary()
        );
        if std::env::var("LATCHKEY_TEST_STRICT").as_deref() == Ok("1") {
            panic!("{message}");
        }
        eprintln!("\n*** SKIP {message} ***\n");
        false
    }
}

/// The code block of `docs/forward-auth.md` fenced as `lang`.
fn documented(lang: &str) -> &'static str {
    let fence = format!("```{lang}\n");
    let start = DOCS
        .find(&fence)
        .unwrap_or_else(|| panic!("docs/forward-auth.md has a {lang} block"))
        + fence.len();
    let len = DOCS[start..].find("```").unwrap();
    &DOCS[start..start + len]
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Headers as the upstream saw them: every value under its lower-case name.
type Seen = BTreeMap<String, Vec<String>>;

struct Upstream {
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn echo_upstream() -> Upstream {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let router = axum::Router::new().fallback(move |headers: HeaderMap| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut seen = Seen::new();
            for (name, value) in &headers {
                seen.entry(name.as_str().to_owned())
                    .or_default()
                    .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
            }
            Json(seen)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Upstream { port, hits }
}

/// A proxy child process; killed by its id on drop.
struct Running {
    process: Child,
    port: u16,
    dir: TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        ["error.log", "stderr.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn start(proxy: Proxy, latchkey: u16, upstream: u16) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let block = documented(match proxy {
        Proxy::Nginx => "nginx",
        Proxy::Caddy => "caddy",
    })
    .replace("127.0.0.1:8080", &format!("127.0.0.1:{latchkey}"))
    .replace("127.0.0.1:9000", &format!("127.0.0.1:{upstream}"));
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let stderr = std::fs::File::create(path("stderr.log")).unwrap();
    let mut command = match proxy {
        Proxy::Nginx => {
            let server = block.replace("listen 443 ssl;", &format!("listen 127.0.0.1:{port};"));
            assert_ne!(server, block, "the nginx block listens on 443");
            let p = |name: &str| path(name).display().to_string();
            // One process, so that killing it leaves no workers behind.
            let conf = format!(
                "master_process off;\npid {pid};\nerror_log {error} info;\n\
                 events {{ worker_connections 64; }}\n\
                 http {{\n\
                 access_log {access};\n\
                 client_body_temp_path {body};\nproxy_temp_path {proxy};\n\
                 fastcgi_temp_path {fastcgi};\nuwsgi_temp_path {uwsgi};\nscgi_temp_path {scgi};\n\
                 {server}\n}}\n",
                pid = p("nginx.pid"),
                error = p("error.log"),
                access = p("access.log"),
                body = p("body"),
                proxy = p("proxy"),
                fastcgi = p("fastcgi"),
                uwsgi = p("uwsgi"),
                scgi = p("scgi"),
            );
            std::fs::write(path("nginx.conf"), conf).unwrap();
            let mut c = Command::new(NGINX);
            c.arg("-p")
                .arg(dir.path())
                .arg("-e")
                .arg(path("error.log"))
                .arg("-c")
                .arg(path("nginx.conf"))
                .arg("-g")
                .arg("daemon off;");
            c
        }
        Proxy::Caddy => {
            let site = block.replace("api.example.org {", &format!("http://127.0.0.1:{port} {{"));
            assert_ne!(site, block, "the Caddy block serves api.example.org");
            let conf =
                format!("{{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n}}\n{site}");
            std::fs::write(path("Caddyfile"), conf).unwrap();
            let mut c = Command::new(CADDY);
            c.arg("run")
                .arg("--config")
                .arg(path("Caddyfile"))
                .arg("--adapter")
                .arg("caddyfile")
                .env("HOME", dir.path())
                .env("XDG_CONFIG_HOME", path("config"))
                .env("XDG_DATA_HOME", path("data"));
            c
        }
    };
    let process = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("{proxy:?} starts: {e}"));
    Running { process, port, dir }
}

async fn wait_until_listening(running: &mut Running) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", running.port))
        .await
        .is_err()
    {
        if let Some(status) = running.process.try_wait().unwrap() {
            panic!("the proxy exited ({status}):\n{}", running.log());
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not start:\n{}",
            running.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn seen(response: reqwest::Response) -> Seen {
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn one<'a>(seen: &'a Seen, name: &str) -> &'a str {
    match seen.get(name).map(Vec::as_slice) {
        Some([value]) => value,
        other => panic!("{name} reached the upstream as {other:?}, not once"),
    }
}

async fn create_reader(app: &TestApp) -> DeviceCredentials {
    let response = app
        .post_device(&json!({"email": "ann@example.org", "password": PASSWORD, "deviceName": "reader", "scope": "read"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    DeviceCredentials {
        id: body["_id"].as_str().unwrap().to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

#[rstest]
#[case::nginx_sqlite(Proxy::Nginx, Backend::Sqlite)]
#[case::nginx_postgres(Proxy::Nginx, Backend::Postgres)]
#[case::caddy_sqlite(Proxy::Caddy, Backend::Sqlite)]
#[case::caddy_postgres(Proxy::Caddy, Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_configuration_guards_an_upstream(
    #[case] proxy: Proxy,
    #[case] backend: Backend,
) {
    if !proxy.available("the_documented_configuration_guards_an_upstream") {
        return;
    }
    let app = spawn_app_with(backend, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let latchkey: u16 = app.base_url.rsplit(':').next().unwrap().parse().unwrap();
    let upstream = echo_upstream().await;
    let mut running = start(proxy, latchkey, upstream.port);
    wait_until_listening(&mut running).await;
    let log = running.log();

    app.create_member("ann@example.org").await;
    let device = app.create_device("ann@example.org", "api client").await;
    let reader = create_reader(&app).await;
    let http = &app.http;
    let to = |path: &str| running.url(path);

    // A valid device password passes, with the identity reaching the
    // upstream and the device password not.
    let s = seen(
        http.get(to("/v1/things?x=1"))
            .header("Authorization", basic(&device.id, &device.token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one(&s, "remote-user"), "ann@example.org", "{s:?}\n{log}");
    assert_eq!(one(&s, "remote-email"), "ann@example.org");
    assert_eq!(one(&s, "remote-groups"), "synchronisation");
    assert_eq!(
        one(&s, "remote-credential"),
        format!("device:{}", device.id)
    );
    assert_eq!(one(&s, "remote-scope"), "full");
    assert!(s.contains_key("remote-name"), "{s:?}");
    assert!(!s.contains_key("authorization"), "{s:?}");

    // Identity headers a client sent are replaced, not added to.
    let mut forged = http
        .post(to("/v1/things"))
        .header("Authorization", basic(&device.id, &device.token));
    for name in IDENTITY {
        forged = forged.header(name, "root@example.org");
    }
    let s = seen(forged.send().await.unwrap()).await;
    assert_eq!(one(&s, "remote-user"), "ann@example.org", "{s:?}");
    assert_eq!(one(&s, "remote-email"), "ann@example.org");
    assert_eq!(one(&s, "remote-groups"), "synchronisation");
    assert_eq!(one(&s, "remote-scope"), "full");
    for name in IDENTITY {
        assert!(
            s.get(name)
                .is_none_or(|v| v.iter().all(|v| v != "root@example.org")),
            "{name}: {s:?}"
        );
    }
    let passed = upstream.hits.load(Ordering::SeqCst);

    // A wrong token, or none: the proxy answers 401 with latchkey's challenge.
    let wrong = basic(&device.id, &reader.token);
    for request in [
        http.get(to("/v1/things")).header("Authorization", wrong),
        http.get(to("/v1/things"))
            .header("Remote-User", "ann@example.org"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = response
            .headers()
            .get_all("www-authenticate")
            .iter()
            .collect();
        assert_eq!(challenges, ["Basic realm=\"latchkey\""]);
    }

    // A read credential may GET but not POST.
    let s = seen(
        http.get(to("/v1/things"))
            .header("Authorization", basic(&reader.id, &reader.token))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(one(&s, "remote-scope"), "read");
    let passed = passed + 1;
    let response = http
        .post(to("/v1/things"))
        .header("Authorization", basic(&reader.id, &reader.token))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A service's API access authorisation passes as itself, with no
    // email, and a client's claim to be a person does not survive; disabled,
    // it is refused at once.
    let (access, token) = app
        .service
        .create_access(
            &crate::helpers::OPERATOR,
            latchkey::service::NewAccessRequest {
                name: "Time clock, hall 2".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let service = basic(access.id.as_str(), token.expose());
    let s = seen(
        http.post(to("/v1/clock-in"))
            .header("Authorization", service.clone())
            .header("Remote-Email", "root@example.org")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let me = format!("access:{}", access.id);
    assert_eq!(one(&s, "remote-user"), me, "{s:?}");
    assert_eq!(one(&s, "remote-credential"), me);
    assert_eq!(one(&s, "remote-name"), "Time clock, hall 2");
    assert!(
        s.get("remote-email")
            .is_none_or(|v| v.iter().all(|v| v != "root@example.org")),
        "{s:?}"
    );
    let passed = passed + 1;
    app.service
        .set_access_enabled(&crate::helpers::OPERATOR, access.id.as_str(), false)
        .await
        .unwrap();
    let response = http
        .get(to("/v1/clock-in"))
        .header("Authorization", service)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);

    // A revoked credential is refused at once.
    let gone = app
        .on_device(Method::DELETE, &device.id, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let response = http
        .get(to("/v1/things"))
        .header("Authorization", basic(&device.id, &device.token))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(
        upstream.hits.load(Ordering::SeqCst),
        passed,
        "a refused request reached the upstream"
    );
}
