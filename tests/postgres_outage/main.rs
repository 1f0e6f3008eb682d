//! PostgreSQL stopped under load and started again. A test binary of its
//! own: cargo runs test binaries one at a time, so stopping the cluster here
//! cannot disturb the other suites. Bounded in time; the cluster is started
//! again whatever happens.

// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

#[path = "../integration/helpers.rs"]
mod helpers;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use helpers::{spawn_app_with, Backend, PASSWORD};

/// The local cluster, found the way Debian's tools name it.
fn cluster() -> Option<(String, String)> {
    let version = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .max()?;
    Some((version, "main".to_owned()))
}

fn pg_ctlcluster(action: &str) -> bool {
    let Some((version, name)) = cluster() else {
        return false;
    };
    let mut command = Command::new("pg_ctlcluster");
    command.args(["--skip-systemctl-redirect", &version, &name, action]);
    if action == "stop" {
        command.args(["-m", "fast"]);
    }
    command.status().is_ok_and(|s| s.success())
}

/// Starts the cluster again when dropped, even if the test panicked.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        if !pg_ctlcluster("start") {
            eprintln!("!!! could not start PostgreSQL again; run: pg_ctlcluster --skip-systemctl-redirect 15 main start");
        }
    }
}

#[derive(Default)]
struct Seen {
    ok: AtomicUsize,
    unavailable: AtomicUsize,
    other: AtomicUsize,
    slowest_ms: AtomicUsize,
    others: std::sync::Mutex<Vec<String>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_gives_503s_and_the_server_recovers_by_itself() {
    if Backend::Postgres.available() != Backend::Postgres {
        eprintln!("SKIPPED: the outage test needs PostgreSQL");
        return;
    }
    if cluster().is_none() {
        assert!(
            std::env::var("LATCHKEY_TEST_STRICT").as_deref() != Ok("1"),
            "no local PostgreSQL cluster to stop (LATCHKEY_TEST_STRICT=1)"
        );
        eprintln!("!!!!!!!! SKIPPED: no pg_ctlcluster-managed cluster here !!!!!!!!");
        return;
    }
    let app = spawn_app_with(Backend::Postgres, |c| {
        c.max_staleness = Duration::from_secs(1)
    })
    .await;
    app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "under load").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    // Load: cached-credential reads and password-checked creations, all the while.
    let seen = Arc::new(Seen::default());
    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (http, base, device, seen, running) = (
            app.http.clone(),
            app.base_url.clone(),
            device.clone(),
            seen.clone(),
            running.clone(),
        );
        load.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let started = Instant::now();
                let request = if worker == 0 {
                    http.post(format!("{base}/server/api/device")).json(
                        &json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "load"}),
                    )
                } else {
                    http.get(format!("{base}/server/api/device/{}", device.id))
                        .basic_auth(&device.id, Some(&device.token))
                };
                let status = request
                    .timeout(Duration::from_secs(20))
                    .send()
                    .await
                    .map(|r| r.status());
                let ms = started.elapsed().as_millis() as usize;
                seen.slowest_ms.fetch_max(ms, Ordering::Relaxed);
                match status {
                    Ok(s) if s.is_success() => seen.ok.fetch_add(1, Ordering::Relaxed),
                    Ok(StatusCode::SERVICE_UNAVAILABLE) => {
                        seen.unavailable.fetch_add(1, Ordering::Relaxed)
                    }
                    other => {
                        seen.others.lock().unwrap().push(format!("{other:?}"));
                        seen.other.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let restart = Restart;
    assert!(pg_ctlcluster("stop"), "could not stop PostgreSQL");
    let stopped_at = Instant::now();

    // A request that needs the database: a clear 503 with Retry-After, soon.
    let started = Instant::now();
    let response = app
        .post_device(&json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "x"}))
        .await;
    assert!(started.elapsed() < Duration::from_secs(10), "it hung");
    assert!(response.headers().contains_key("retry-after"));
    helpers::expect_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "database_unavailable",
    )
    .await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Cached credentials are served for at most the staleness bound (plus
    // the time to notice the loss), then refused with 503, not accepted.
    let deadline = stopped_at + Duration::from_secs(1) + Duration::from_secs(6);
    loop {
        let status = app.get_own_device(&device).await.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            Instant::now() < deadline,
            "a cached credential was still served {:?} after the database stopped",
            stopped_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    drop(restart);
    let restarted_at = Instant::now();
    loop {
        let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == StatusCode::OK
            && app.get_own_device(&device).await.status() == StatusCode::OK
        {
            break;
        }
        assert!(
            restarted_at.elapsed() < Duration::from_secs(30),
            "no recovery 30 s after PostgreSQL came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "recovered {:?} after PostgreSQL started",
        restarted_at.elapsed()
    );
    let created = app
        .post_device(
            &json!({"email": "m@example.org", "password": PASSWORD, "deviceName": "after"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);

    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }

    // The change feed is back too: a revocation is seen at once.
    let keeper = app.create_device("m@example.org", "keeper").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let other_node = helpers::spawn_node(&app, |_| {}).await;
    let deleted = other_node
        .on_device(reqwest::Method::DELETE, &device.id, &keeper)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    let started = Instant::now();
    while app.get_own_device(&device).await.status() == StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(1), "feed not back");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let (ok, unavailable, other, slowest) = (
        seen.ok.load(Ordering::Relaxed),
        seen.unavailable.load(Ordering::Relaxed),
        seen.other.load(Ordering::Relaxed),
        seen.slowest_ms.load(Ordering::Relaxed),
    );
    eprintln!("under load: {ok} ok, {unavailable} × 503, {other} other, slowest {slowest} ms");
    assert_eq!(
        other,
        0,
        "only successes and 503s, never a 500 or a hang: {:?}",
        seen.others.lock().unwrap()
    );
    assert!(unavailable > 0 && ok > 0);
    assert!(slowest < 10_000, "a request took {slowest} ms");
    let logs = helpers::captured_logs();
    assert!(!logs.contains(&device.token), "a token reached the logs");
}
