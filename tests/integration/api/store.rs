//! The storage contract, through the `Store` interface only, so every backend
//! must pass it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey::credential::{DeviceId, Token};
use latchkey::domain::{
    DeviceName, Email, LastUse, Permission, Permissions, Timestamp, UNKNOWN_DEVICE_TYPE,
};
use latchkey::store::{
    self, AdminGuard, CredentialChange, NewAccount, NewDevice, Store, StoreError,
};
use rstest::rstest;

use crate::helpers::{spawn_app, Backend};

async fn account(store: &dyn Store, email: &str) -> latchkey::domain::Account {
    store
        .create_account(&NewAccount {
            email: Email::parse(email).unwrap(),
            name: "Someone".into(),
            password_hash: "$argon2id$not-a-real-hash".into(),
            permissions: [Permission::Synchronisation].into_iter().collect(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap()
}

async fn device(store: &dyn Store, owner: &latchkey::domain::Account) -> DeviceId {
    let id = DeviceId::generate();
    store
        .insert_device(&NewDevice {
            id: id.clone(),
            account_id: owner.id,
            name: DeviceName::parse("device").unwrap(),
            device_type: UNKNOWN_DEVICE_TYPE.into(),
            token_digest: Token::generate().digest(),
            created_at: Timestamp::now(),
        })
        .await
        .unwrap();
    id
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn unique_keys_are_conflicts(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    let owner = account(store, "a@example.org").await;
    let duplicate = store
        .create_account(&NewAccount {
            email: Email::parse("A@Example.org").unwrap(),
            name: "Again".into(),
            password_hash: "x".into(),
            permissions: Permissions::default(),
            created_at: Timestamp::now(),
        })
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Conflict("email"))),
        "{duplicate:?}"
    );

    let id = device(store, &owner).await;
    let again = store
        .insert_device(&NewDevice {
            id,
            account_id: owner.id,
            name: DeviceName::parse("clash").unwrap(),
            device_type: UNKNOWN_DEVICE_TYPE.into(),
            token_digest: Token::generate().digest(),
            created_at: Timestamp::now(),
        })
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict("device id"))),
        "{again:?}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_older_last_use_never_overwrites_a_newer_one(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    let owner = account(store, "a@example.org").await;
    let id = device(store, &owner).await;
    let at = |millis| LastUse {
        at: Timestamp::from_millis(millis),
        ip: Some("192.0.2.7".parse().unwrap()),
        user_agent: Some(format!("agent {millis}")),
    };
    store
        .record_last_used(&[(id.clone(), at(2_000))])
        .await
        .unwrap();
    store
        .record_last_used(&[(id.clone(), at(1_000))])
        .await
        .unwrap();
    let stored = store.device(&id).await.unwrap().unwrap().last_used.unwrap();
    assert_eq!(stored, at(2_000));
    // Unknown devices in a batch are skipped, not an error.
    store
        .record_last_used(&[(DeviceId::generate(), at(3_000)), (id.clone(), at(3_000))])
        .await
        .unwrap();
    assert_eq!(
        store.device(&id).await.unwrap().unwrap().last_used,
        Some(at(3_000))
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn permissions_and_state_round_trip(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    let owner = account(store, "a@example.org").await;
    store
        .set_permission(owner.id, Permission::Admin, true, AdminGuard::Unchecked)
        .await
        .unwrap();
    store
        .set_permission(owner.id, Permission::Admin, true, AdminGuard::Unchecked)
        .await
        .unwrap();
    store
        .set_permission(
            owner.id,
            Permission::Synchronisation,
            false,
            AdminGuard::Unchecked,
        )
        .await
        .unwrap();
    store
        .set_enabled(owner.id, false, AdminGuard::Unchecked)
        .await
        .unwrap();
    let loaded = store.account(owner.id).await.unwrap().unwrap();
    assert_eq!(
        loaded.permissions.iter().collect::<Vec<_>>(),
        [Permission::Admin]
    );
    assert!(!loaded.enabled);
    assert!(
        !store.has_admin().await.unwrap(),
        "a disabled admin does not count"
    );
    store
        .set_enabled(owner.id, true, AdminGuard::Unchecked)
        .await
        .unwrap();
    assert!(store.has_admin().await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_admin_guard_rolls_back_a_change_that_leaves_no_administrator(
    #[case] backend: Backend,
) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    // spawn_app's database has its first administrator; make it the only one.
    let owner = account(store, "a@example.org").await;
    for admin in store.accounts().await.unwrap() {
        if admin.permissions.contains(Permission::Admin) {
            assert!(store
                .set_permission(admin.id, Permission::Admin, false, AdminGuard::Unchecked)
                .await
                .unwrap());
        }
    }
    assert!(store
        .set_permission(owner.id, Permission::Admin, true, AdminGuard::KeepOne)
        .await
        .unwrap());
    assert!(!store
        .set_permission(owner.id, Permission::Admin, false, AdminGuard::KeepOne)
        .await
        .unwrap());
    assert!(!store
        .set_enabled(owner.id, false, AdminGuard::KeepOne)
        .await
        .unwrap());
    let kept = store.account(owner.id).await.unwrap().unwrap();
    assert!(kept.enabled && kept.permissions.contains(Permission::Admin));
    // Unchecked, the operator may do it (and repair it the same way).
    assert!(store
        .set_enabled(owner.id, false, AdminGuard::Unchecked)
        .await
        .unwrap());
    assert!(!store.has_admin().await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_token_is_replaced_only_while_the_expected_one_is_stored(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    let owner = account(store, "a@example.org").await;
    let id = device(store, &owner).await;
    let first = Token::generate().digest();
    let second = Token::generate().digest();
    assert!(store.set_device_token(&id, None, &first).await.unwrap());
    assert!(!store
        .set_device_token(&id, Some(&second), &second)
        .await
        .unwrap());
    assert!(store
        .set_device_token(&id, Some(&first), &second)
        .await
        .unwrap());
    assert!(store
        .credential(&id)
        .await
        .unwrap()
        .unwrap()
        .digest
        .matches(&second));
    assert!(!store
        .set_device_token(&id, Some(&first), &first)
        .await
        .unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn changes_from_another_connection_are_delivered(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let watched = store::open(&app.database_url, &Default::default())
        .await
        .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink_seen = seen.clone();
    watched
        .watch_changes(Arc::new(move |change| {
            sink_seen.lock().unwrap().push(change)
        }))
        .await
        .unwrap();

    // Another connection (as the CLI would be) makes the changes.
    let writer = app.service.store().as_ref();
    let owner = account(writer, "a@example.org").await;
    let id = device(writer, &owner).await;
    writer
        .set_device_token(&id, None, &Token::generate().digest())
        .await
        .unwrap();
    writer.delete_device(&id).await.unwrap();
    writer
        .set_enabled(owner.id, false, AdminGuard::Unchecked)
        .await
        .unwrap();
    writer
        .set_permission(
            owner.id,
            Permission::Synchronisation,
            false,
            AdminGuard::Unchecked,
        )
        .await
        .unwrap();
    // A rename is announced too: cached device data shows the name.
    let other = device(writer, &owner).await;
    writer
        .rename_device(&other, &DeviceName::parse("renamed").unwrap())
        .await
        .unwrap();

    let expected = vec![
        // The grant that came with the new account.
        CredentialChange::Account(owner.id),
        // A new device is announced: another node may remember its id as unknown.
        CredentialChange::Device(id.clone()),
        CredentialChange::Device(id.clone()),
        CredentialChange::Device(id.clone()),
        CredentialChange::Account(owner.id),
        CredentialChange::Account(owner.id),
        CredentialChange::Device(other.clone()),
        CredentialChange::Device(other.clone()),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while seen.lock().unwrap().len() < expected.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only saw {:?}",
            seen.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give a stray event time to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*seen.lock().unwrap(), expected);
    watched.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_bulk_import_is_all_or_nothing(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    let owner = account(store, "bulk@example.org").await;
    let new = |id: DeviceId| NewDevice {
        id,
        account_id: owner.id,
        name: DeviceName::parse("imported").unwrap(),
        device_type: UNKNOWN_DEVICE_TYPE.into(),
        token_digest: Token::generate().digest(),
        created_at: Timestamp::now(),
    };
    let batch: Vec<NewDevice> = (0..25).map(|_| new(DeviceId::generate())).collect();
    store.insert_devices(&batch).await.unwrap();
    assert_eq!(store.devices(Some(owner.id)).await.unwrap().len(), 25);

    let taken = batch[3].id.clone();
    let clash = vec![new(DeviceId::generate()), new(taken)];
    assert!(matches!(
        store.insert_devices(&clash).await,
        Err(StoreError::Conflict("device id"))
    ));
    assert_eq!(
        store.devices(Some(owner.id)).await.unwrap().len(),
        25,
        "half an import was written"
    );
}
