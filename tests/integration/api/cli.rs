//! The admin CLI, run as the real binary against a running server's database.

use std::process::Output;
use std::time::{Duration, Instant};

use latchkey::domain::Permission;
use reqwest::StatusCode;
use rstest::rstest;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::{
    breaking_each_rule, captured_logs, spawn_app, Backend, DeviceCredentials, TestApp, PASSWORD,
};

async fn latchkey(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    latchkey_with_env(app, args, stdin, &[]).await
}

async fn latchkey_with_env(
    app: &TestApp,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .envs(env.iter().copied())
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .env_remove("LATCHKEY_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("latchkey binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("CLI finishes")
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Polls until the device's status is `want`; returns how long that took.
async fn time_until(app: &TestApp, device: &DeviceCredentials, want: StatusCode) -> Duration {
    let start = Instant::now();
    loop {
        if app.get_own_device(device).await.status() == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn cli_changes_reach_a_running_server_within_a_second(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let device = app.create_device("member@example.org", "script").await;
    let spare = app.create_device("member@example.org", "spare").await;
    // Warm the server's cache, so a stale entry would show.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);

    let steps: [(&[&str], StatusCode); 5] = [
        (
            &[
                "user",
                "revoke",
                "--email",
                "member@example.org",
                "--permission",
                "synchronisation",
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            &[
                "user",
                "grant",
                "--email",
                "member@example.org",
                "--permission",
                "synchronisation",
            ],
            StatusCode::OK,
        ),
        (
            &["user", "disable", "--email", "member@example.org"],
            StatusCode::FORBIDDEN,
        ),
        (
            &["user", "enable", "--email", "member@example.org"],
            StatusCode::OK,
        ),
        (&["device", "revoke", &device.id], StatusCode::UNAUTHORIZED),
    ];
    for (args, want) in steps {
        assert_ne!(app.get_own_device(&device).await.status(), want, "{args:?}");
        let output = latchkey(&app, args, None).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        let took = time_until(&app, &device, want).await;
        assert!(took < Duration::from_secs(1), "{args:?} took {took:?}");
    }
    assert_eq!(app.get_own_device(&spare).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn user_create_prints_a_generated_password_once_and_it_works(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let output = latchkey(
        &app,
        &[
            "user",
            "create",
            "--email",
            "New@Example.org",
            "--name",
            "New Person",
            "--permission",
            "synchronisation",
        ],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    let password = printed
        .lines()
        .find_map(|l| l.strip_prefix("Main password (shown only once): "))
        .expect("password printed")
        .to_owned();
    assert_eq!(password.len(), 20);
    let response = app
        .post_device(&serde_json::json!({"email": "new@example.org", "password": password, "deviceName": "x"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let list = latchkey(&app, &["user", "list"], None).await;
    assert!(list.status.success());
    let listing = stdout(&list);
    assert!(
        listing.contains("new@example.org") && listing.contains("New Person"),
        "{listing}"
    );
    assert!(!listing.contains(&password));

    let devices = latchkey(
        &app,
        &["device", "list", "--email", "new@example.org"],
        None,
    )
    .await;
    assert!(devices.status.success());
    assert!(stdout(&devices).contains("unknown"));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn password_from_stdin_and_set_password(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let created = latchkey(
        &app,
        &[
            "user",
            "create",
            "--email",
            "a@example.org",
            "--admin",
            "--permission",
            "synchronisation",
            "--password-stdin",
        ],
        Some("first password\n"),
    )
    .await;
    assert!(created.status.success(), "{}", stderr(&created));
    assert!(!stdout(&created).contains("first password"));
    let account = app.account_by_email("a@example.org").await.unwrap();
    assert!(account
        .permissions
        .contains(latchkey::domain::Permission::Admin));

    let changed = latchkey(
        &app,
        &[
            "user",
            "set-password",
            "--email",
            "a@example.org",
            "--password-stdin",
        ],
        Some("second password\r\n"),
    )
    .await;
    assert!(changed.status.success(), "{}", stderr(&changed));
    let old = app
        .post_device(&serde_json::json!({"email": "a@example.org", "password": "first password", "deviceName": "x"}))
        .await;
    assert_eq!(old.status(), StatusCode::UNAUTHORIZED);
    let new = app
        .post_device(&serde_json::json!({"email": "a@example.org", "password": "second password", "deviceName": "x"}))
        .await;
    assert_eq!(new.status(), StatusCode::CREATED);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_holds_new_passwords_to_the_rules(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    let create = [
        "user",
        "create",
        "--email",
        "newbie@example.org",
        "--password-stdin",
    ];
    let set = [
        "user",
        "set-password",
        "--email",
        "member@example.org",
        "--password-stdin",
    ];
    for (args, local) in [(&create, "newbie"), (&set, "member")] {
        for (password, message) in breaking_each_rule(local) {
            let out = latchkey(&app, args, Some(&format!("{password}\n"))).await;
            assert!(!out.status.success(), "{args:?} {message}");
            let err = stderr(&out);
            assert!(err.contains(message), "{args:?}: {err}");
            assert!(!err.contains(&password) && !stdout(&out).contains(&password));
        }
    }
    assert!(app.account_by_email("newbie@example.org").await.is_err());

    // A higher minimum, by flag or environment variable.
    let fifteen = Some("fifteen letters\n");
    let flag = [&set[..], &["--min-password-length", "16"]].concat();
    let out = latchkey(&app, &flag, fifteen).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least 16 characters"),
        "{}",
        stderr(&out)
    );
    let env = [("LATCHKEY_MIN_PASSWORD_LENGTH", "16")];
    let out = latchkey_with_env(&app, &create, fifteen, &env).await;
    assert!(
        stderr(&out).contains("at least 16 characters"),
        "{}",
        stderr(&out)
    );
    let out = latchkey(&app, &set, fifteen).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = latchkey_with_env(&app, &create, Some("sixteen letters!\n"), &env).await;
    assert!(out.status.success(), "{}", stderr(&out));
    // Generated ones are as long as the minimum asks.
    let out = latchkey(
        &app,
        &[
            "user",
            "create",
            "--email",
            "generated@example.org",
            "--min-password-length",
            "40",
        ],
        None,
    )
    .await;
    let printed = stdout(&out);
    let generated = printed
        .lines()
        .find_map(|line| line.strip_prefix("Main password (shown only once): "))
        .unwrap_or_else(|| panic!("{printed}"));
    assert_eq!(generated.chars().count(), 40);

    // Below 12 or above 256: refused before anything happens.
    for bad in ["11", "257"] {
        let out = latchkey(
            &app,
            &[&set[..], &["--min-password-length", bad]].concat(),
            // Nothing is read: it may be gone before anything is written.
            None,
        )
        .await;
        assert!(!out.status.success());
        assert!(
            stderr(&out).contains("--min-password-length"),
            "{}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("12..=256"), "{}", stderr(&out));
    }
    let out = latchkey_with_env(
        &app,
        &["serve"],
        None,
        &[("LATCHKEY_MIN_PASSWORD_LENGTH", "8")],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--min-password-length"),
        "{}",
        stderr(&out)
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn cli_errors_are_clear_and_exit_non_zero(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("taken@example.org").await;
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["user", "create", "--email", "Taken@example.org"],
            None,
            "already exists",
        ),
        (&["user", "create", "--email", "not-an-email"], None, "'@'"),
        (
            &[
                "user",
                "create",
                "--email",
                "x@example.org",
                "--permission",
                "root",
            ],
            None,
            "Unknown permission",
        ),
        (
            &[
                "user",
                "create",
                "--email",
                "x@example.org",
                "--password-stdin",
            ],
            Some("short\n"),
            "at least 12",
        ),
        (
            &[
                "user",
                "create",
                "--email",
                "x@example.org",
                "--password-stdin",
            ],
            Some(""),
            "no password",
        ),
        (
            &[
                "user",
                "grant",
                "--email",
                "nobody@example.org",
                "--permission",
                "admin",
            ],
            None,
            "No account",
        ),
        (
            &[
                "user",
                "grant",
                "--email",
                "taken@example.org",
                "--permission",
                "superuser",
            ],
            None,
            "Unknown permission",
        ),
        (
            &["user", "disable", "--email", "nobody@example.org"],
            None,
            "No account",
        ),
        (
            &[
                "user",
                "set-password",
                "--email",
                "nobody@example.org",
                "--password-stdin",
            ],
            Some("long enough\n"),
            "No account",
        ),
        (&["device", "revoke", "12345678"], None, "no device"),
        (&["device", "revoke", "abc"], None, "no device"),
        (
            &["device", "list", "--email", "nobody@example.org"],
            None,
            "No account",
        ),
    ];
    for (args, stdin, expected) in cases {
        let output = latchkey(&app, args, *stdin).await;
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(message.starts_with("error: "), "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
    }
    // Nothing half-created.
    assert!(app.account_by_email("x@example.org").await.is_err());
    let output = latchkey(&app, &["user", "frobnicate"], None).await;
    assert_eq!(output.status.code(), Some(2), "usage errors exit 2");
    let _ = PASSWORD;
}

/// SQLite only: `--data-dir` names where its database file would be.
#[rstest]
#[case::sqlite()]
#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_do_not_create_a_stray_database() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("typo");
    for args in [
        &["user", "list"][..],
        &["device", "list"],
        &["user", "disable", "--email", "a@example.org"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(!output.status.success(), "{args:?}");
        assert!(
            stderr(&output).contains("there is no database at"),
            "{}",
            stderr(&output)
        );
        assert!(
            !data_dir.exists(),
            "{args:?} created {}",
            data_dir.display()
        );
    }
    // Creating an account is how a first administrator can exist before the first start.
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["user", "create", "--email", "first@example.org", "--admin"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(data_dir.join("latchkey.db").exists());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_keeps_the_last_administrator_unless_forced(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_account(
        "a@example.org",
        &[Permission::Admin, Permission::Synchronisation],
    )
    .await;
    app.create_member("m@example.org").await;
    let refused: [&[&str]; 3] = [
        &["user", "disable", "--email", "a@example.org"],
        &["user", "delete", "--email", "a@example.org"],
        &[
            "user",
            "revoke",
            "--email",
            "a@example.org",
            "--permission",
            "admin",
        ],
    ];
    for args in refused {
        let output = latchkey(&app, args, None).await;
        assert!(!output.status.success(), "{args:?} succeeded");
        let message = stderr(&output);
        assert!(
            message.starts_with("error: ") && message.contains("no enabled administrator"),
            "{args:?}: {message}"
        );
        assert!(message.contains("--force"), "{args:?}: {message}");
    }
    let kept = app.account_by_email("a@example.org").await.unwrap();
    assert!(kept.enabled && kept.permissions.contains(Permission::Admin));

    // What leaves an administrator in place is not refused.
    for args in [
        &["user", "disable", "--email", "m@example.org"][..],
        &[
            "user",
            "revoke",
            "--email",
            "a@example.org",
            "--permission",
            "synchronisation",
        ],
        &[
            "user",
            "grant",
            "--email",
            "m@example.org",
            "--permission",
            "admin",
        ],
        &["user", "enable", "--email", "m@example.org"],
        // m is an administrator now, so a may go.
        &["user", "disable", "--email", "a@example.org"],
    ] {
        let output = latchkey(&app, args, None).await;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    // The last one again, now with --force.
    let last = [
        "user",
        "revoke",
        "--email",
        "m@example.org",
        "--permission",
        "admin",
    ];
    assert!(!latchkey(&app, &last, None).await.status.success());
    let forced = latchkey(&app, &[&last[..], &["--force"]].concat(), None).await;
    assert!(forced.status.success(), "{}", stderr(&forced));
    let demoted = app.account_by_email("m@example.org").await.unwrap();
    assert!(!demoted.permissions.contains(Permission::Admin));
    // With nobody left to keep, changes are not refused either.
    let output = latchkey(&app, &["user", "disable", "--email", "m@example.org"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = latchkey(
        &app,
        &["user", "disable", "--email", "a@example.org", "--force"],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn user_create_admin_makes_an_administrator_like_the_first_one(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let output = latchkey(
        &app,
        &["user", "create", "--email", "boss@example.org", "--admin"],
        None,
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("permissions: synchronisation,admin"),
        "{}",
        stdout(&output)
    );
    let account = app.account_by_email("boss@example.org").await.unwrap();
    assert!(account.permissions.contains(Permission::Admin));
    // Without it, an administrator would have no Devices tab.
    assert!(account.permissions.contains(Permission::Synchronisation));
    let help = latchkey(&app, &["user", "create", "--help"], None).await;
    assert!(
        stdout(&help).contains("synchronisation, as the"),
        "{}",
        stdout(&help)
    );
}

/// What `serve` does at start on a database that has accounts but no
/// enabled administrator: nothing but say how to repair it.
#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn no_administrator_is_created_on_a_database_with_accounts(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let member = format!("member-{:08x}@example.org", rand::random::<u32>());
    app.create_member(&member).await;
    let made = app
        .service
        .ensure_administrator(&crate::helpers::OPERATOR, "admin@localhost")
        .await
        .unwrap();
    assert!(made.is_none(), "an administrator was created");
    assert!(captured_logs().contains("latchkey user grant --email <EMAIL> --permission admin"));

    // An administrator disabled by mistake: the repair names them.
    let admin = format!("boss-{:08x}@example.org", rand::random::<u32>());
    app.create_account(&admin, &[Permission::Admin]).await;
    app.service
        .set_enabled(
            &crate::helpers::OPERATOR.forcing(true),
            app.account_by_email(&admin).await.unwrap().id,
            false,
        )
        .await
        .unwrap();
    let made = app
        .service
        .ensure_administrator(&crate::helpers::OPERATOR, "admin@localhost")
        .await
        .unwrap();
    assert!(made.is_none(), "an administrator was created");
    assert!(captured_logs().contains(&format!("latchkey user enable --email {admin}")));
    assert_eq!(app.accounts().await.unwrap().len(), 2);
    assert!(app.account_by_email("admin@localhost").await.is_err());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn device_list_does_not_call_a_use_not_written_yet_never(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "script").await;
    // Used just now: the server has it in memory, not in the database yet.
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let listed = latchkey(&app, &["device", "list"], None).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let shown = stdout(&listed);
    assert!(!shown.contains("never"), "{shown}");
    assert!(shown.contains("none recorded"), "{shown}");
    assert!(shown.contains("may not show yet"), "{shown}");

    app.service.flush_last_used().await.unwrap();
    let listed = stdout(&latchkey(&app, &["device", "list"], None).await);
    let row = listed.lines().find(|l| l.contains(&device.id)).unwrap();
    assert!(!row.contains("none recorded"), "{listed}");
    assert!(row.contains("127.0.0.1"), "{listed}");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn operators_disabling_every_administrator_at_once_leave_one(#[case] backend: Backend) {
    const ADMINS: usize = 4;
    let app = std::sync::Arc::new(spawn_app(backend).await);
    for i in 0..ADMINS {
        app.create_account(&format!("admin{i}@example.org"), &[Permission::Admin])
            .await;
    }
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(ADMINS));
    let runs: Vec<_> = (0..ADMINS)
        .map(|i| {
            let (app, barrier) = (app.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let email = format!("admin{i}@example.org");
                latchkey(&app, &["user", "disable", "--email", &email], None).await
            })
        })
        .collect();
    let mut refused = Vec::new();
    for run in runs {
        let output = run.await.unwrap();
        if !output.status.success() {
            refused.push(stderr(&output));
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("--force"), "{}", refused[0]);
    let left = app
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.enabled && a.permissions.contains(Permission::Admin))
        .count();
    assert_eq!(left, 1);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn user_delete_revokes_the_accounts_device_passwords(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("m@example.org").await;
    let device = app.create_device("m@example.org", "phone").await;
    assert_eq!(app.get_own_device(&device).await.status(), StatusCode::OK);
    let output = latchkey(&app, &["user", "delete", "--email", "m@example.org"], None).await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(app.account_by_email("m@example.org").await.is_err());
    // The server hears of it through the change feed, like any CLI change.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    while app.get_own_device(&device).await.status() != StatusCode::UNAUTHORIZED {
        assert!(tokio::time::Instant::now() < deadline, "device still works");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs the CLI with its standard output already closed at the reading end,
/// as `| head` leaves it.
async fn latchkey_into_a_closed_pipe(app: &TestApp, args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .env("LATCHKEY_DATABASE_URL", &app.database_url)
        .env_remove("LATCHKEY_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("latchkey binary runs");
    // Gone before the CLI has opened the database, let alone printed.
    drop(child.stdout.take());
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("CLI finishes")
        .unwrap()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn listings_end_quietly_when_the_reader_stops(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("member@example.org").await;
    app.create_device("member@example.org", "phone").await;
    for args in [&["user", "list"][..], &["device", "list"][..]] {
        let output = latchkey_into_a_closed_pipe(&app, args).await;
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stderr(&output), "", "{args:?}");
    }
    // What must reach the reader is an error, not a panic: this password
    // was to be shown once.
    let output =
        latchkey_into_a_closed_pipe(&app, &["user", "create", "--email", "new@example.org"]).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).starts_with("error: cannot write to standard output"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn user_reset_2fa_lets_the_password_alone_sign_in_again(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let member = app.create_member("member@example.org").await;
    let mut tx = app
        .service
        .store()
        .begin_write(latchkey::store::Serialise::Ordinary)
        .await
        .unwrap();
    tx.set_two_factor_enabled(member.id, true).await.unwrap();
    tx.commit().await.unwrap();
    let output = latchkey(
        &app,
        &["user", "reset-2fa", "--email", "member@example.org"],
        None,
    )
    .await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("Two-factor authentication of member@example.org reset"),
        "{}",
        stdout(&output)
    );
    assert!(!app.account(member.id).await.unwrap().two_factor_enabled);
    crate::visitor::Visitor::signed_in(&app, "member@example.org").await;
    let again = latchkey(
        &app,
        &["user", "reset-2fa", "--email", "member@example.org"],
        None,
    )
    .await;
    assert!(stdout(&again).contains("nothing changed"));
    let unknown = latchkey(
        &app,
        &["user", "reset-2fa", "--email", "no@example.org"],
        None,
    )
    .await;
    assert!(!unknown.status.success());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_cli_keeps_to_the_servers_lifetime_policy(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_member("ann@example.org").await;
    let device = app.create_device("ann@example.org", "script").await;
    let in_days = |days: i64| {
        let at = time::OffsetDateTime::now_utc() + time::Duration::days(days);
        at.date().to_string()
    };
    let (far, near) = (in_days(60), in_days(10));
    // Told by the flag, or by the variable the servers read.
    let by_flag = ["--max-credential-lifetime-days", "30"];
    let by_env = [("LATCHKEY_MAX_CREDENTIAL_LIFETIME_DAYS", "30")];
    for (extra, env) in [(&by_flag[..], &[][..]), (&[][..], &by_env[..])] {
        let mut create = vec![
            "access",
            "create",
            "--name",
            "Time clock",
            "--expires-at",
            &far,
        ];
        create.extend_from_slice(extra);
        let refused = latchkey_with_env(&app, &create, None, env).await;
        assert!(!refused.status.success(), "{}", stdout(&refused));
        assert!(
            stderr(&refused).contains("at most 30 days"),
            "{}",
            stderr(&refused)
        );
        let mut limits = vec!["device", "limits", &device.id, "--expires-at", &far];
        limits.extend_from_slice(extra);
        let refused = latchkey_with_env(&app, &limits, None, env).await;
        assert!(!refused.status.success(), "{}", stdout(&refused));
        let mut limits = vec!["device", "limits", &device.id, "--expires-at", &near];
        limits.extend_from_slice(extra);
        let set = latchkey_with_env(&app, &limits, None, env).await;
        assert!(set.status.success(), "{}", stderr(&set));
    }
    // Without a policy, as before, any expiry.
    let free = latchkey(
        &app,
        &["access", "create", "--name", "Far", "--expires-at", &far],
        None,
    )
    .await;
    assert!(free.status.success(), "{}", stderr(&free));
}
