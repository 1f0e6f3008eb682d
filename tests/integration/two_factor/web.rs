//! Two-factor authentication over HTTP: enrolment, the second step with a
//! code or a recovery code, the drift window, the pending sign-in's limits,
//! the throttle, the password route, turning it off, the administrator's
//! reset and the requirement's grace period.

use std::time::Duration;

use latchkey::domain::{Clock, Permission};
use latchkey::service::throttle::{Rate, ThrottleConfig};
use reqwest::StatusCode;
use rstest::rstest;
use serde_json::json;

use super::totp::{code_at, code_step, enrol, next_step, password_step};
use crate::helpers::{expect_error, spawn_app_with, spawn_node, Backend, TestApp, PASSWORD};
use crate::visitor::Visitor;

const MEMBER: &str = "member@example.org";

/// An app whose two-factor clock the test holds.
async fn app_with_clock(backend: Backend) -> (TestApp, Clock) {
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| config.clock = shared).await;
    (app, clock)
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sign_in_takes_a_code_or_a_recovery_code_each_once(#[case] backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    assert_eq!(enrolled.recovery_codes.len(), 10);
    for code in &enrolled.recovery_codes {
        assert_eq!(code.len(), 19, "{code}");
        assert_eq!(code.split('-').count(), 4, "{code}");
    }
    // Sessions from before go on.
    assert!(me.is_signed_in().await);

    // Password alone: a second page, and no session yet.
    let browser = Visitor::new(&app);
    password_step(&browser, MEMBER, PASSWORD).await;
    assert!(!browser.is_signed_in().await);
    let code = enrolled.code(&clock);
    code_step(&browser, &code)
        .await
        .assert_redirect("/settings/profile");
    assert!(browser.is_signed_in().await);

    // The same code again, in another browser within the same step: refused.
    let again = Visitor::new(&app);
    password_step(&again, MEMBER, PASSWORD).await;
    let refused = code_step(&again, &code).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused
        .body
        .contains("That code is wrong, or it was used already."));
    assert!(!again.is_signed_in().await);

    // A recovery code works, once, in any case and spacing, and says how many are left.
    let recovery = &enrolled.recovery_codes[3];
    let typed = recovery.to_uppercase().replace('-', " ");
    code_step(&again, &typed)
        .await
        .assert_redirect("/settings/profile");
    let landed = again.get("/settings/profile").await;
    assert!(
        landed.body.contains("9 recovery codes are left"),
        "{}",
        landed.body
    );
    let third = Visitor::new(&app);
    password_step(&third, MEMBER, PASSWORD).await;
    let refused = code_step(&third, recovery).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let security = me.get("/settings/security").await;
    assert!(security.body.contains("9 recovery codes are left."));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn codes_one_step_off_are_accepted_and_two_steps_off_are_not(#[case] backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    next_step(&clock);
    next_step(&clock);
    let now = clock.now().seconds();
    let attempt = |offset: i64| {
        let app = &app;
        let secret = enrolled.secret.clone();
        async move {
            let browser = Visitor::new(app);
            password_step(&browser, MEMBER, PASSWORD).await;
            code_step(&browser, &code_at(&secret, now + offset * 30))
                .await
                .status
        }
    };
    assert_eq!(attempt(-2).await, StatusCode::UNAUTHORIZED, "a minute late");
    assert_eq!(attempt(-1).await, StatusCode::SEE_OTHER, "30 s late");
    assert_eq!(attempt(2).await, StatusCode::UNAUTHORIZED, "a minute early");
    assert_eq!(attempt(1).await, StatusCode::SEE_OTHER, "30 s early");
    // Now step +1 was accepted: the current step's code is an earlier one.
    assert_eq!(
        attempt(0).await,
        StatusCode::UNAUTHORIZED,
        "earlier than the last"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_pending_sign_in_expires_after_five_minutes_and_dies_after_five_wrong_codes(
    #[case] backend: Backend,
) {
    let (app, clock) = app_with_clock(backend).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;

    let late = Visitor::new(&app);
    password_step(&late, MEMBER, PASSWORD).await;
    let form = late.get("/sign-in/code").await;
    assert_eq!(form.status, StatusCode::OK);
    clock.advance(Duration::from_secs(5 * 60 + 1));
    let expired = late
        .post(
            "/sign-in/code",
            &[("csrf", &form.csrf()), ("code", &enrolled.code(&clock))],
        )
        .await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert!(
        expired.body.contains("This sign-in has expired"),
        "{}",
        expired.body
    );
    assert!(!late.is_signed_in().await);
    late.get("/sign-in/code").await.assert_redirect("/sign-in");

    let guesser = Visitor::new(&app);
    password_step(&guesser, MEMBER, PASSWORD).await;
    for wrong in ["000000", "111111", "222222", "333333"] {
        let page = code_step(&guesser, wrong).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED);
        assert!(page.body.contains("That code is wrong"));
    }
    let fifth = code_step(&guesser, "444444").await;
    assert!(fifth
        .body
        .contains("This sign-in has expired or had too many wrong codes"));
    // Dead: even the right code does not bring it back.
    guesser
        .get("/sign-in/code")
        .await
        .assert_redirect("/sign-in");
    let csrf = Visitor::new(&app).get("/sign-in").await.csrf();
    let right = guesser
        .post(
            "/sign-in/code",
            &[("csrf", &csrf), ("code", &enrolled.code(&clock))],
        )
        .await;
    assert_ne!(right.status, StatusCode::SEE_OTHER);
    assert!(!guesser.is_signed_in().await);
    // A new sign-in with the right code works.
    let fresh = Visitor::new(&app);
    password_step(&fresh, MEMBER, PASSWORD).await;
    code_step(&fresh, &enrolled.code(&clock))
        .await
        .assert_redirect("/settings/profile");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn wrong_codes_are_throttled_per_account_across_nodes(#[case] backend: Backend) {
    let clock = Clock::default();
    let shared = clock.clone();
    let throttle = ThrottleConfig {
        per_account_second_factor: Rate {
            burst: 6,
            refill_every: Duration::from_secs(3600),
        },
        ..ThrottleConfig::default()
    };
    let a = spawn_app_with(backend, move |config| {
        config.clock = shared;
        config.throttle = throttle;
    })
    .await;
    // On PostgreSQL a second node shares the budget; SQLite has one node.
    let b_clock = clock.clone();
    let b = if a.backend == Backend::Postgres {
        Some(
            spawn_node(&a, move |config| {
                config.clock = b_clock;
                config.throttle = throttle;
            })
            .await,
        )
    } else {
        None
    };
    a.create_member(MEMBER).await;
    let me = Visitor::signed_in(&a, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    let mut statuses = Vec::new();
    for node in 0..2 {
        let app = match (&b, node) {
            (Some(b), 1) => b,
            _ => &a,
        };
        let browser = Visitor::new(app);
        password_step(&browser, MEMBER, PASSWORD).await;
        for wrong in ["000001", "000002", "000003"] {
            statuses.push(code_step(&browser, wrong).await.status);
        }
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    // The budget (6) is spent, over both nodes: the next code is not checked at all.
    let app = b.as_ref().unwrap_or(&a);
    let browser = Visitor::new(app);
    password_step(&browser, MEMBER, PASSWORD).await;
    let refused = code_step(&browser, &enrolled.code(&clock)).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert!(refused.headers.contains_key("retry-after"));
    assert!(!browser.is_signed_in().await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_password_route_says_two_factor_enabled_only_to_the_right_password(
    #[case] backend: Backend,
) {
    let (app, clock) = app_with_clock(backend).await;
    app.create_account(MEMBER, &[Permission::Synchronisation])
        .await;
    let before = app.create_device(MEMBER, "made before").await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    enrol(&me, &clock).await;

    let body =
        |password: &str| json!({"email": MEMBER, "password": password, "deviceName": "phone"});
    let refused = expect_error(
        app.post_device(&body(PASSWORD)).await,
        StatusCode::FORBIDDEN,
        "two_factor_enabled",
    )
    .await;
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("Devices tab"), "{message}");
    assert!(message.contains("app sign-in flow"), "{message}");
    assert!(message.contains("docs/api.md#app-sign-in"), "{message}");

    let wrong = expect_error(
        app.post_device(&body("not the password at all")).await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    let unknown = expect_error(
        app.post_device(&json!({"email": "nobody@example.org", "password": "not the password at all", "deviceName": "phone"}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown);
    // Device passwords from before keep working.
    assert_eq!(app.get_own_device(&before).await.status(), StatusCode::OK);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn new_recovery_codes_and_turning_off_need_a_current_code(#[case] backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    let enrolled = enrol(&me, &clock).await;
    const HERE: &str = "/settings/security";

    let page = me
        .act(
            HERE,
            "/settings/security/two-factor/recovery-codes",
            &[("code", "123456")],
        )
        .await;
    assert!(page.body.contains("No new recovery codes"), "{}", page.body);
    assert!(page.text_of("recovery-code-1").is_none());
    let page = me
        .act(
            HERE,
            "/settings/security/two-factor/recovery-codes",
            &[("code", &enrolled.code(&clock))],
        )
        .await;
    let fresh: Vec<String> = (1..=10)
        .map(|i| page.text_of(&format!("recovery-code-{i}")).unwrap())
        .collect();
    assert!(fresh.iter().all(|c| !enrolled.recovery_codes.contains(c)));
    assert!(page.body.contains("latchkey-recovery-codes.txt"));
    next_step(&clock);
    // The old codes are gone; a new one works.
    let browser = Visitor::new(&app);
    password_step(&browser, MEMBER, PASSWORD).await;
    assert_eq!(
        code_step(&browser, &enrolled.recovery_codes[0])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    code_step(&browser, &fresh[0])
        .await
        .assert_redirect("/settings/profile");

    // Off needs both the password and a code.
    let page = me
        .act(
            HERE,
            "/settings/security/two-factor/off",
            &[
                ("password", "not the password"),
                ("code", &enrolled.code(&clock)),
            ],
        )
        .await;
    assert!(
        page.body.contains("still on: The main password is wrong."),
        "{}",
        page.body
    );
    let page = me
        .act(
            HERE,
            "/settings/security/two-factor/off",
            &[("password", PASSWORD), ("code", "000000")],
        )
        .await;
    assert!(page.body.contains("still on"), "{}", page.body);
    let page = me
        .act(
            HERE,
            "/settings/security/two-factor/off",
            &[("password", PASSWORD), ("code", &enrolled.code(&clock))],
        )
        .await;
    assert!(
        page.body.contains("Two-factor authentication is off."),
        "{}",
        page.body
    );
    Visitor::signed_in(&app, MEMBER).await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_administrator_resets_two_factor_authentication(#[case] backend: Backend) {
    let (app, clock) = app_with_clock(backend).await;
    let (admin, _) = Visitor::admin(&app).await;
    let member = app.create_member(MEMBER).await;
    let me = Visitor::signed_in(&app, MEMBER).await;
    enrol(&me, &clock).await;
    let account_page = format!("/admin/accounts/{}", member.id.0);
    let page = admin.get(&account_page).await;
    assert!(
        page.body.contains("id=\"account-two-factor\">on"),
        "{}",
        page.body
    );
    let confirm = admin.get(&format!("{account_page}/two-factor/reset")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm
        .body
        .contains("Reset two-factor authentication of member@example.org?"));
    let page = admin
        .act(
            &account_page,
            &format!("{account_page}/two-factor/reset"),
            &[],
        )
        .await;
    assert!(page
        .body
        .contains("Two-factor authentication of member@example.org reset"));
    assert!(page.body.contains("id=\"account-two-factor\">off"));
    // The password alone signs in again, and enrolment starts afresh.
    let again = Visitor::signed_in(&app, MEMBER).await;
    let security = again.get("/settings/security").await;
    assert!(security
        .body
        .contains("Two-factor authentication is <strong>off</strong>"));
    enrol(&again, &clock).await;
    // Only administrators reset.
    let other = app.create_member("other@example.org").await;
    let page = me
        .submit(
            "/settings/profile",
            &format!("/admin/accounts/{}/two-factor/reset", other.id.0),
            &[],
        )
        .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_required_second_factor_has_a_grace_period_then_nothing_but_enrolment(
    #[case] backend: Backend,
) {
    let clock = Clock::default();
    let shared = clock.clone();
    let app = spawn_app_with(backend, move |config| {
        config.clock = shared;
        config.require_two_factor = latchkey::domain::Requirement::All;
        config.two_factor_grace = Duration::from_secs(7 * 86_400);
    })
    .await;
    app.create_account("admin@example.org", &[Permission::Admin])
        .await;
    let admin = Visitor::new(&app);
    admin
        .sign_in_as("admin@example.org", PASSWORD)
        .await
        .assert_redirect("/settings/security/two-factor");
    let member = app.create_member(MEMBER).await;

    // Every sign-in lands on the enrolment page, but other pages still work.
    let me = Visitor::new(&app);
    me.sign_in_as(MEMBER, PASSWORD)
        .await
        .assert_redirect("/settings/security/two-factor");
    assert_eq!(me.get("/settings/profile").await.status, StatusCode::OK);
    let security = me.get("/settings/security").await;
    assert!(
        security.body.contains("turn it on before"),
        "{}",
        security.body
    );
    let account_page = format!("/admin/accounts/{}", member.id.0);
    let listed = admin.get(&account_page).await;
    assert!(
        listed.body.contains("required; grace period until"),
        "{}",
        listed.body
    );
    let list = admin.get("/admin/accounts").await;
    assert!(list.body.contains("required; grace period until"));

    // A week later: nothing but enrolment (and signing out).
    clock.advance(Duration::from_secs(7 * 86_400 + 60));
    me.get("/settings/profile")
        .await
        .assert_redirect("/settings/security/two-factor");
    me.get("/settings/devices")
        .await
        .assert_redirect("/settings/security/two-factor");
    let overdue = admin.get("/admin/accounts").await;
    assert_eq!(
        overdue.location(),
        Some("/settings/security/two-factor"),
        "the administrator is covered too"
    );
    enrol(&me, &clock).await;
    assert_eq!(me.get("/settings/profile").await.status, StatusCode::OK);
}
