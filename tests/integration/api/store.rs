//! The storage contract, through the `Store` interface only, so every backend
//! must pass it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use latchkey::credential::{CsrfSecret, DeviceId, SessionKey, Token, TokenDigest};
use latchkey::domain::rules;
use latchkey::domain::{
    Account, AccountId, Device, DeviceName, Email, LastUse, Notice, Permission, Permissions,
    SessionId, Timestamp, UNKNOWN_DEVICE_TYPE,
};
use latchkey::store::{
    self, BucketWrites, Buckets, CredentialChange, CredentialTable, KeyRegistration, NewAccount,
    NewDevice, NewSession, Serialise, Store, StoreError,
};
use rstest::rstest;

use crate::helpers::{spawn_app, Backend, TestDatabase};
use crate::writes::AutoCommit;

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

/// A change of who may administer.
#[derive(Clone, Copy)]
enum Change {
    Permission(AccountId, Permission, bool),
    Enabled(AccountId, bool),
}

/// What the service does for an administrator held to the last-administrator
/// rule: the change commits only if an enabled administrator remains, as
/// its own transaction sees it. Returns whether it committed.
async fn keeping_an_administrator(store: &dyn Store, change: Change) -> bool {
    let mut tx = store.begin_write(Serialise::Administrators).await.unwrap();
    match change {
        Change::Permission(id, permission, granted) => {
            tx.set_permission(id, permission, granted).await.unwrap();
        }
        Change::Enabled(id, enabled) => {
            assert!(tx.set_enabled(id, enabled).await.unwrap());
            if !enabled {
                tx.end_sessions(id, None).await.unwrap();
            }
        }
    }
    if rules::keeps_an_administrator(tx.has_admin().await.unwrap()).is_err() {
        // Dropped: rolled back.
        return false;
    }
    tx.commit().await.unwrap();
    true
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
            limits: Default::default(),
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
            limits: Default::default(),
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
        user_agent: Some(format!("agent {millis}").into()),
        recent: Default::default(),
    };
    store
        .record_last_used(CredentialTable::Devices, &[(id.clone(), at(2_000))])
        .await
        .unwrap();
    store
        .record_last_used(CredentialTable::Devices, &[(id.clone(), at(1_000))])
        .await
        .unwrap();
    let stored = store.device(&id).await.unwrap().unwrap().last_used.unwrap();
    assert_eq!(stored, at(2_000));
    // Unknown devices in a batch are skipped, not an error.
    store
        .record_last_used(
            CredentialTable::Devices,
            &[(DeviceId::generate(), at(3_000)), (id.clone(), at(3_000))],
        )
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
        .set_permission(owner.id, Permission::Admin, true)
        .await
        .unwrap();
    store
        .set_permission(owner.id, Permission::Admin, true)
        .await
        .unwrap();
    store
        .set_permission(owner.id, Permission::Synchronisation, false)
        .await
        .unwrap();
    store.set_enabled(owner.id, false).await.unwrap();
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
    store.set_enabled(owner.id, true).await.unwrap();
    assert!(store.has_admin().await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_change_that_leaves_no_administrator_is_rolled_back(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.service.store().as_ref();
    // spawn_app's database has its first administrator; make it the only one.
    let owner = account(store, "a@example.org").await;
    for admin in store.accounts().await.unwrap() {
        if admin.permissions.contains(Permission::Admin) {
            assert!(store
                .set_permission(admin.id, Permission::Admin, false)
                .await
                .unwrap());
        }
    }
    assert!(
        keeping_an_administrator(store, Change::Permission(owner.id, Permission::Admin, true))
            .await
    );
    assert!(
        !keeping_an_administrator(
            store,
            Change::Permission(owner.id, Permission::Admin, false)
        )
        .await
    );
    assert!(!keeping_an_administrator(store, Change::Enabled(owner.id, false)).await);
    let kept = store.account(owner.id).await.unwrap().unwrap();
    assert!(kept.enabled && kept.permissions.contains(Permission::Admin));
    // Without the check, as the operator acts, it commits (and is repaired the same way).
    assert!(store.set_enabled(owner.id, false).await.unwrap());
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
    writer.set_enabled(owner.id, false).await.unwrap();
    writer
        .set_permission(owner.id, Permission::Synchronisation, false)
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
        limits: Default::default(),
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

// ----- on a store of the test's own -----
//
// No server runs beside these stores, so nothing sweeps sessions, prunes
// buckets or creates a first administrator behind a test's back.

/// A store on a new database, and the database (dropped with it).
async fn fresh(backend: Backend) -> (Arc<dyn Store>, TestDatabase) {
    let database = TestDatabase::new(backend).await;
    let store = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    (store, database)
}

fn new_account(email: &str, permissions: &[Permission], created_at: i64) -> NewAccount {
    NewAccount {
        email: Email::parse(email).unwrap(),
        name: format!("Name of {email}"),
        password_hash: format!("hash of {email}"),
        permissions: permissions.iter().copied().collect(),
        created_at: Timestamp::from_millis(created_at),
    }
}

async fn member(store: &dyn Store, email: &str, permissions: &[Permission]) -> AccountId {
    store
        .create_account(&new_account(email, permissions, 1_000))
        .await
        .unwrap()
        .id
}

/// What an account shows, comparable.
fn shown(account: &Account) -> (AccountId, String, String, Vec<Permission>, bool, bool, i64) {
    (
        account.id,
        account.email.as_str().to_owned(),
        account.name.clone(),
        account.permissions.iter().collect(),
        account.enabled,
        account.two_factor_enabled,
        account.created_at.millis(),
    )
}

fn new_device(owner: AccountId, name: &str, created_at: i64) -> NewDevice {
    NewDevice {
        id: DeviceId::generate(),
        account_id: owner,
        name: DeviceName::parse(name).unwrap(),
        device_type: "phone".into(),
        token_digest: Token::generate().digest(),
        created_at: Timestamp::from_millis(created_at),
        limits: Default::default(),
    }
}

/// What a device shows, comparable.
fn device_shown(device: &Device) -> (DeviceId, AccountId, String, String, i64, Option<LastUse>) {
    (
        device.id.clone(),
        device.account_id,
        device.name.as_str().to_owned(),
        device.device_type.to_string(),
        device.created_at.millis(),
        device.last_used.clone(),
    )
}

async fn device_ids(store: &dyn Store, account: Option<AccountId>) -> Vec<DeviceId> {
    store
        .devices(account)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect()
}

fn new_session(account: AccountId, key: &SessionKey, at: i64) -> NewSession {
    NewSession {
        digest: key.digest(),
        account_id: account,
        csrf: CsrfSecret::generate(),
        created_at: Timestamp::from_millis(at),
        ip: None,
        user_agent: None,
    }
}

async fn session_at(store: &dyn Store, account: AccountId, at: i64) -> (SessionKey, SessionId) {
    let key = SessionKey::generate();
    let id = store
        .create_session(&new_session(account, &key, at))
        .await
        .unwrap()
        .id;
    (key, id)
}

async fn has_session(store: &dyn Store, key: &SessionKey) -> bool {
    store.session(&key.digest()).await.unwrap().is_some()
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn accounts_are_created_found_by_id_and_email_and_listed_by_email(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let created = store
        .create_account(&new_account(
            "carol@example.org",
            &[Permission::Synchronisation, Permission::Admin],
            1_234,
        ))
        .await
        .unwrap();
    assert!(created.enabled && !created.two_factor_enabled);
    let loaded = store.account(created.id).await.unwrap().unwrap();
    assert_eq!(shown(&loaded), shown(&created));
    assert_eq!(
        shown(&loaded),
        (
            created.id,
            "carol@example.org".to_owned(),
            "Name of carol@example.org".to_owned(),
            vec![Permission::Synchronisation, Permission::Admin],
            true,
            false,
            1_234
        )
    );

    let (by_email, hash) = store
        .account_by_email(&Email::parse("Carol@Example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown(&by_email), shown(&created));
    assert_eq!(hash, "hash of carol@example.org");

    assert!(store
        .account(AccountId(created.id.0 + 1000))
        .await
        .unwrap()
        .is_none());
    assert!(store
        .account_by_email(&Email::parse("nobody@example.org").unwrap())
        .await
        .unwrap()
        .is_none());

    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[Permission::Synchronisation]).await;
    let listed: Vec<_> = store.accounts().await.unwrap().iter().map(shown).collect();
    assert_eq!(
        listed.iter().map(|a| a.0).collect::<Vec<_>>(),
        [alice, bob, created.id],
        "listed by email"
    );
    assert_eq!(listed[0].3, [], "no permissions is an empty set");
    assert_eq!(listed[2], shown(&created));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_failed_account_creation_leaves_nothing_behind(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    member(store, "taken@example.org", &[]).await;
    let again = store
        .create_account(&new_account("taken@example.org", &[Permission::Admin], 1))
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict("email"))),
        "{again:?}"
    );
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    assert!(
        !store.has_admin().await.unwrap(),
        "its permissions were not kept"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_write_transaction_dropped_without_commit_leaves_nothing(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[Permission::Synchronisation]).await;
    let (alices, _) = session_at(store, alice, 1_000).await;
    let new = new_device(alice, "phone", 2_000);
    {
        let mut tx = store.begin_write(Serialise::Ordinary).await.unwrap();
        tx.create_account(&new_account("bob@example.org", &[Permission::Admin], 1))
            .await
            .unwrap();
        tx.insert_device(&new).await.unwrap();
        assert!(tx.set_account_name(alice, "Renamed").await.unwrap());
        assert!(tx.set_enabled(alice, false).await.unwrap());
        assert_eq!(tx.end_sessions(alice, None).await.unwrap(), 1);
        tx.create_session(&new_session(alice, &SessionKey::generate(), 3_000))
            .await
            .unwrap();
    }
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    assert!(store.device(&new.id).await.unwrap().is_none());
    let kept = store.account(alice).await.unwrap().unwrap();
    assert_eq!(kept.name, "Name of alice@example.org");
    assert!(kept.enabled);
    assert_eq!(store.sessions_of(alice).await.unwrap().len(), 1);
    assert!(has_session(store, &alices).await);
    assert!(!store.has_admin().await.unwrap());
    // Nothing is left locked either: the next writer gets on.
    assert!(store.set_account_name(alice, "Alice").await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_writes_of_one_transaction_are_seen_together_once_it_commits(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let alice = member(store.as_ref(), "alice@example.org", &[]).await;
    let (alices, _) = session_at(store.as_ref(), alice, 1_000).await;
    let mut tx = store.begin_write(Serialise::Ordinary).await.unwrap();
    let bob = tx
        .create_account(&new_account("bob@example.org", &[Permission::Admin], 1))
        .await
        .unwrap();
    let device = tx
        .insert_device(&new_device(bob.id, "phone", 2_000))
        .await
        .unwrap()
        .id;
    assert!(tx.set_password_hash(alice, "new hash").await.unwrap());
    assert_eq!(tx.end_sessions(alice, None).await.unwrap(), 1);
    // Not yet, from another connection.
    let bobs_email = Email::parse("bob@example.org").unwrap();
    assert!(other.account_by_email(&bobs_email).await.unwrap().is_none());
    assert!(other.device(&device).await.unwrap().is_none());
    assert!(has_session(other.as_ref(), &alices).await);
    tx.commit().await.unwrap();

    assert!(other.account_by_email(&bobs_email).await.unwrap().is_some());
    assert_eq!(
        other.device(&device).await.unwrap().unwrap().account_id,
        bob.id
    );
    assert!(!has_session(other.as_ref(), &alices).await);
    let email = Email::parse("alice@example.org").unwrap();
    let (_, hash) = other.account_by_email(&email).await.unwrap().unwrap();
    assert_eq!(hash, "new hash");
    assert!(other.has_admin().await.unwrap());
    other.close().await;
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn has_admin_inside_a_transaction_sees_its_own_writes(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[Permission::Admin]).await;
    let bob = member(store, "bob@example.org", &[]).await;

    let mut tx = store.begin_write(Serialise::Administrators).await.unwrap();
    assert!(tx.has_admin().await.unwrap());
    assert!(tx
        .set_permission(alice, Permission::Admin, false)
        .await
        .unwrap());
    assert!(!tx.has_admin().await.unwrap(), "its own revocation counts");
    assert!(!tx
        .set_permission(alice, Permission::Admin, false)
        .await
        .unwrap());
    assert!(tx
        .set_permission(bob, Permission::Admin, true)
        .await
        .unwrap());
    assert!(tx.has_admin().await.unwrap(), "its own grant counts");
    assert!(tx.set_enabled(bob, false).await.unwrap());
    assert!(
        !tx.has_admin().await.unwrap(),
        "a disabled administrator does not"
    );
    drop(tx);
    assert!(store.has_admin().await.unwrap(), "rolled back");

    let mut tx = store.begin_write(Serialise::Administrators).await.unwrap();
    let carol = tx
        .create_account(&new_account("carol@example.org", &[Permission::Admin], 1))
        .await
        .unwrap();
    assert!(tx.set_enabled(alice, false).await.unwrap());
    assert!(
        tx.has_admin().await.unwrap(),
        "an account it created counts"
    );
    tx.commit().await.unwrap();
    let admins: Vec<_> = store
        .accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| rules::is_administrator(a).is_ok())
        .map(|a| a.id)
        .collect();
    assert_eq!(admins, [carol.id]);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn names_and_two_factor_state_are_written(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[]).await;
    store
        .set_account_name(alice, "Alice Liddell")
        .await
        .unwrap();
    store.set_two_factor_enabled(alice, true).await.unwrap();
    let changed = store.account(alice).await.unwrap().unwrap();
    assert_eq!(changed.name, "Alice Liddell");
    assert!(changed.two_factor_enabled);
    let untouched = store.account(bob).await.unwrap().unwrap();
    assert_eq!(untouched.name, "Name of bob@example.org");
    assert!(!untouched.two_factor_enabled);

    store.set_two_factor_enabled(alice, false).await.unwrap();
    assert!(
        !store
            .account(alice)
            .await
            .unwrap()
            .unwrap()
            .two_factor_enabled
    );
    // An account that does not exist is reported, not an error.
    let nobody = AccountId(alice.0 + 1000);
    assert!(!store.set_account_name(nobody, "Nobody").await.unwrap());
    assert!(!store.set_two_factor_enabled(nobody, true).await.unwrap());
    assert!(store.set_account_name(alice, "Alice").await.unwrap());
    assert!(store.set_two_factor_enabled(alice, true).await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_password_change_ends_the_other_sessions_of_that_account_only(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[]).await;
    let (kept, _) = session_at(store, alice, 1_000).await;
    let (other, _) = session_at(store, alice, 2_000).await;
    let (bobs, _) = session_at(store, bob, 3_000).await;

    let mut tx = store.begin_write(Serialise::Ordinary).await.unwrap();
    assert!(tx.set_password_hash(alice, "new hash").await.unwrap());
    assert_eq!(
        tx.end_sessions(alice, Some(&kept.digest())).await.unwrap(),
        1
    );
    tx.commit().await.unwrap();
    let email = Email::parse("alice@example.org").unwrap();
    let (_, hash) = store.account_by_email(&email).await.unwrap().unwrap();
    assert_eq!(hash, "new hash");
    assert!(has_session(store, &kept).await);
    assert!(!has_session(store, &other).await);
    assert!(has_session(store, &bobs).await);

    let mut tx = store.begin_write(Serialise::Ordinary).await.unwrap();
    assert!(tx.set_password_hash(alice, "newer hash").await.unwrap());
    assert_eq!(tx.end_sessions(alice, None).await.unwrap(), 1);
    tx.commit().await.unwrap();
    assert!(!has_session(store, &kept).await);
    assert!(has_session(store, &bobs).await);
    let (_, hash) = store.account_by_email(&email).await.unwrap().unwrap();
    assert_eq!(hash, "newer hash");
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn disabling_ends_the_sessions_unless_the_change_is_rolled_back(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let admin = member(store, "admin@example.org", &[Permission::Admin]).await;
    let alice = member(store, "alice@example.org", &[]).await;
    let (admins, _) = session_at(store, admin, 1_000).await;
    let (alices, _) = session_at(store, alice, 1_000).await;

    // The only administrator: rolled back, session and all.
    assert!(!keeping_an_administrator(store, Change::Enabled(admin, false)).await);
    assert!(store.account(admin).await.unwrap().unwrap().enabled);
    assert!(has_session(store, &admins).await);

    assert!(keeping_an_administrator(store, Change::Enabled(alice, false)).await);
    assert!(!store.account(alice).await.unwrap().unwrap().enabled);
    assert!(!has_session(store, &alices).await);
    assert!(has_session(store, &admins).await);

    // Enabling ends nothing.
    let (again, _) = session_at(store, alice, 2_000).await;
    assert!(keeping_an_administrator(store, Change::Enabled(alice, true)).await);
    assert!(store.account(alice).await.unwrap().unwrap().enabled);
    assert!(has_session(store, &again).await);
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_change_commits_while_another_administrator_remains(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[Permission::Admin]).await;
    let bob = member(store, "bob@example.org", &[Permission::Admin]).await;
    assert!(
        keeping_an_administrator(store, Change::Permission(alice, Permission::Admin, false)).await
    );
    assert!(
        !keeping_an_administrator(store, Change::Permission(bob, Permission::Admin, false)).await
    );

    // Only an enabled administrator counts as remaining.
    assert!(
        keeping_an_administrator(store, Change::Permission(alice, Permission::Admin, true)).await
    );
    assert!(store.set_enabled(alice, false).await.unwrap());
    assert!(
        !keeping_an_administrator(store, Change::Permission(bob, Permission::Admin, false)).await
    );
    assert!(!keeping_an_administrator(store, Change::Enabled(bob, false)).await);
    let bob_now = store.account(bob).await.unwrap().unwrap();
    assert!(bob_now.enabled && bob_now.permissions.contains(Permission::Admin));

    // Revoking what is not held changes nothing, and is no error.
    assert!(
        keeping_an_administrator(
            store,
            Change::Permission(bob, Permission::Synchronisation, false)
        )
        .await
    );
    assert_eq!(
        store
            .account(bob)
            .await
            .unwrap()
            .unwrap()
            .permissions
            .iter()
            .collect::<Vec<_>>(),
        [Permission::Admin]
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn two_administrators_removing_each_other_at_once_leave_one(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    // Two handles, as two nodes (or the server and the CLI) would have.
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let alice = member(store.as_ref(), "alice@example.org", &[Permission::Admin]).await;
    let bob = member(store.as_ref(), "bob@example.org", &[Permission::Admin]).await;
    for round in 0..10 {
        let (first, second) = (store.clone(), other.clone());
        let demote = tokio::spawn(async move {
            let change = Change::Permission(alice, Permission::Admin, false);
            keeping_an_administrator(first.as_ref(), change).await
        });
        let disable = tokio::spawn(async move {
            keeping_an_administrator(second.as_ref(), Change::Enabled(bob, false)).await
        });
        let outcomes = [demote.await.unwrap(), disable.await.unwrap()];
        assert_eq!(
            outcomes.iter().filter(|done| **done).count(),
            1,
            "round {round}: {outcomes:?}"
        );
        assert!(store.has_admin().await.unwrap(), "round {round}");
        store
            .set_permission(alice, Permission::Admin, true)
            .await
            .unwrap();
        store.set_enabled(bob, true).await.unwrap();
    }
    other.close().await;
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn an_administrators_transaction_waits_for_another_to_end(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let alice = member(store.as_ref(), "alice@example.org", &[Permission::Admin]).await;
    let bob = member(store.as_ref(), "bob@example.org", &[Permission::Admin]).await;

    let mut first = store.begin_write(Serialise::Administrators).await.unwrap();
    assert!(first
        .set_permission(alice, Permission::Admin, false)
        .await
        .unwrap());
    assert!(first.has_admin().await.unwrap(), "bob remains, so far");
    let second = tokio::spawn(async move {
        let mut tx = other.begin_write(Serialise::Administrators).await.unwrap();
        assert!(tx
            .set_permission(bob, Permission::Admin, false)
            .await
            .unwrap());
        let remains = tx.has_admin().await.unwrap();
        drop(tx);
        other.close().await;
        remains
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!second.is_finished(), "it did not wait");
    first.commit().await.unwrap();
    assert!(
        !second.await.unwrap(),
        "once it could go on, it counted the first one's change"
    );
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn has_admin_counts_enabled_administrators_only(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    assert!(!store.has_admin().await.unwrap(), "an empty database");
    let alice = member(store, "alice@example.org", &[Permission::Synchronisation]).await;
    assert!(
        !store.has_admin().await.unwrap(),
        "a member is no administrator"
    );
    store
        .set_permission(alice, Permission::Admin, true)
        .await
        .unwrap();
    assert!(store.has_admin().await.unwrap());
    store
        .set_permission(alice, Permission::Admin, false)
        .await
        .unwrap();
    assert!(!store.has_admin().await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn devices_are_found_listed_oldest_first_renamed_and_deleted(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[]).await;
    let mut later = new_device(alice, "later", 3_000);
    let earlier = new_device(alice, "earlier", 1_000);
    let bobs = new_device(bob, "bob's", 2_000);
    // Created at the same moment: listed by id.
    let mut twin = new_device(alice, "twin", 3_000);
    if twin.id.as_str() < later.id.as_str() {
        std::mem::swap(&mut twin, &mut later);
    }
    for new in [&later, &earlier, &bobs, &twin] {
        let inserted = store.insert_device(new).await.unwrap();
        assert_eq!(device_shown(&inserted), device_shown(&new.inserted()));
        let found = store.device(&new.id).await.unwrap().unwrap();
        assert_eq!(device_shown(&found), device_shown(&new.inserted()));
    }
    assert_eq!(
        device_ids(store, Some(alice)).await,
        [earlier.id.clone(), later.id.clone(), twin.id.clone()]
    );
    assert_eq!(
        device_ids(store, None).await,
        [
            earlier.id.clone(),
            bobs.id.clone(),
            later.id.clone(),
            twin.id.clone()
        ]
    );
    let nobody = member(store, "nobody@example.org", &[]).await;
    assert!(device_ids(store, Some(nobody)).await.is_empty());
    assert!(store.device(&DeviceId::generate()).await.unwrap().is_none());

    let renamed = DeviceName::parse("renamed").unwrap();
    assert!(store.rename_device(&earlier.id, &renamed).await.unwrap());
    let found = store.device(&earlier.id).await.unwrap().unwrap();
    assert_eq!(found.name.as_str(), "renamed");
    assert!(!store
        .rename_device(&DeviceId::generate(), &renamed)
        .await
        .unwrap());

    assert!(store.delete_device(&earlier.id).await.unwrap());
    assert!(!store.delete_device(&earlier.id).await.unwrap());
    assert!(store.device(&earlier.id).await.unwrap().is_none());
    assert!(store.credential(&earlier.id).await.unwrap().is_none());
    assert_eq!(
        device_ids(store, Some(alice)).await,
        [later.id.clone(), twin.id.clone()]
    );
    assert!(!store
        .set_device_token(&earlier.id, None, &Token::generate().digest())
        .await
        .unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_credential_carries_the_digest_and_the_account_state(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[Permission::Synchronisation]).await;
    let new = new_device(alice, "phone", 1_000);
    let digest = TokenDigest(new.token_digest.0);
    store.insert_device(&new).await.unwrap();

    let record = store.credential(&new.id).await.unwrap().unwrap();
    assert!(record.digest.matches(&digest));
    assert!(record.account_enabled);
    assert_eq!(
        record.permissions.iter().collect::<Vec<_>>(),
        [Permission::Synchronisation]
    );
    assert_eq!(device_shown(&record.device), device_shown(&new.inserted()));

    store
        .set_permission(alice, Permission::Admin, true)
        .await
        .unwrap();
    store
        .set_permission(alice, Permission::Synchronisation, false)
        .await
        .unwrap();
    store.set_enabled(alice, false).await.unwrap();
    let record = store.credential(&new.id).await.unwrap().unwrap();
    assert!(!record.account_enabled);
    assert_eq!(
        record.permissions.iter().collect::<Vec<_>>(),
        [Permission::Admin]
    );

    let bare = member(store, "bare@example.org", &[]).await;
    let theirs = new_device(bare, "laptop", 2_000);
    store.insert_device(&theirs).await.unwrap();
    let record = store.credential(&theirs.id).await.unwrap().unwrap();
    assert_eq!(record.permissions, Permissions::default());
    assert!(store
        .credential(&DeviceId::generate())
        .await
        .unwrap()
        .is_none());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_bulk_import_is_all_or_nothing_across_its_statements(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let owner = member(store, "bulk@example.org", &[]).await;
    store.insert_devices(&[]).await.unwrap();
    let existing = new_device(owner, "existing", 1);
    store.insert_device(&existing).await.unwrap();

    // More devices than one PostgreSQL statement takes, the clash last.
    let mut batch: Vec<NewDevice> = (0..10_001)
        .map(|i| new_device(owner, "imported", 10 + i))
        .collect();
    let clash = NewDevice {
        id: existing.id.clone(),
        ..new_device(owner, "clash", 5)
    };
    batch.push(clash);
    assert!(matches!(
        store.insert_devices(&batch).await,
        Err(StoreError::Conflict("device id"))
    ));
    assert_eq!(
        device_ids(store, None).await,
        std::slice::from_ref(&existing.id)
    );

    // The same id twice within one import.
    let twice = new_device(owner, "twice", 7);
    let again = NewDevice {
        id: twice.id.clone(),
        ..new_device(owner, "again", 8)
    };
    assert!(matches!(
        store.insert_devices(&[twice, again]).await,
        Err(StoreError::Conflict("device id"))
    ));
    assert_eq!(device_ids(store, None).await.len(), 1);

    // A device of an account that does not exist fails, and is no conflict.
    let orphan = new_device(AccountId(owner.0 + 1000), "orphan", 9);
    let failed = store
        .insert_devices(&[new_device(owner, "fine", 9), orphan])
        .await;
    assert!(matches!(failed, Err(StoreError::Internal(_))), "{failed:?}");
    assert_eq!(device_ids(store, None).await.len(), 1);

    batch.pop();
    store.insert_devices(&batch).await.unwrap();
    let stored = store.devices(Some(owner)).await.unwrap();
    assert_eq!(stored.len(), 10_002);
    let last = batch.last().unwrap();
    assert_eq!(
        device_shown(stored.last().unwrap()),
        device_shown(&last.inserted())
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn last_use_batches_keep_the_newest_use_of_each_device(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let owner = member(store, "a@example.org", &[]).await;
    let (one, two) = (new_device(owner, "one", 1), new_device(owner, "two", 2));
    store.insert_device(&one).await.unwrap();
    store.insert_device(&two).await.unwrap();
    store
        .record_last_used(CredentialTable::Devices, &[])
        .await
        .unwrap();
    let use_at = |millis, agent: Option<&str>| LastUse {
        at: Timestamp::from_millis(millis),
        ip: None,
        user_agent: agent.map(Into::into),
        recent: Default::default(),
    };
    // One device twice in a batch: the newer use wins, wherever it stands.
    store
        .record_last_used(
            CredentialTable::Devices,
            &[
                (one.id.clone(), use_at(5_000, Some("newer"))),
                (one.id.clone(), use_at(4_000, Some("older"))),
                (two.id.clone(), use_at(4_000, None)),
                (two.id.clone(), use_at(6_000, Some("newest"))),
            ],
        )
        .await
        .unwrap();
    let last = |device: Option<Device>| device.unwrap().last_used;
    assert_eq!(
        last(store.device(&one.id).await.unwrap()),
        Some(use_at(5_000, Some("newer")))
    );
    assert_eq!(
        last(store.device(&two.id).await.unwrap()),
        Some(use_at(6_000, Some("newest")))
    );
    // A use at the very same moment is not newer.
    store
        .record_last_used(
            CredentialTable::Devices,
            &[(one.id.clone(), use_at(5_000, Some("same")))],
        )
        .await
        .unwrap();
    assert_eq!(
        last(store.device(&one.id).await.unwrap()),
        Some(use_at(5_000, Some("newer")))
    );
    // The credential shows it too.
    let record = store.credential(&two.id).await.unwrap().unwrap();
    assert_eq!(record.device.last_used, Some(use_at(6_000, Some("newest"))));
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn buckets_are_written_only_when_the_update_says_so_and_pruned_by_age(
    #[case] backend: Backend,
) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let keys = |names: &[&str]| names.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    let read = |names: &[&str]| {
        let names = keys(names);
        async move {
            let mut seen = None;
            let wrote = store
                .update_buckets(&names, &mut |found: Buckets| {
                    seen = Some(found);
                    None
                })
                .await
                .unwrap();
            assert!(!wrote);
            seen.unwrap()
        }
    };
    assert!(read(&["a", "b"]).await.is_empty());

    let mut calls = 0;
    let wrote = store
        .update_buckets(&keys(&["a", "b", "a"]), &mut |found: Buckets| {
            calls += 1;
            assert!(found.is_empty());
            Some(BucketWrites::from([
                ("a".to_owned(), Some((4.0, 1_000))),
                ("b".to_owned(), Some((0.5, 2_000))),
            ]))
        })
        .await
        .unwrap();
    assert!(wrote);
    assert_eq!(calls, 1);
    assert_eq!(
        read(&["a", "b", "c"]).await,
        Buckets::from([
            ("a".to_owned(), (4.0, 1_000)),
            ("b".to_owned(), (0.5, 2_000)),
        ])
    );

    // Declining leaves the stored buckets as they were.
    assert!(!store
        .update_buckets(&keys(&["a"]), &mut |_| None)
        .await
        .unwrap());
    assert_eq!(
        read(&["a"]).await,
        Buckets::from([("a".to_owned(), (4.0, 1_000))])
    );

    // What the update returns is written, existing or not.
    assert!(store
        .update_buckets(&keys(&["a", "b"]), &mut |found: Buckets| {
            let (tokens, _) = found["a"];
            Some(BucketWrites::from([
                ("a".to_owned(), Some((tokens - 1.0, 3_000))),
                ("b".to_owned(), Some((1.5, 5_000))),
                ("c".to_owned(), Some((2.0, 6_000))),
            ]))
        })
        .await
        .unwrap());
    assert_eq!(
        read(&["a", "b", "c"]).await,
        Buckets::from([
            ("a".to_owned(), (3.0, 3_000)),
            ("b".to_owned(), (1.5, 5_000)),
            ("c".to_owned(), (2.0, 6_000)),
        ])
    );

    // Reading without a transaction sees the same.
    assert_eq!(
        store.buckets(&keys(&["a", "b", "c", "d"])).await.unwrap(),
        read(&["a", "b", "c"]).await
    );

    // Strictly before the cutoff.
    assert_eq!(store.prune_buckets(5_000, "keep ").await.unwrap(), 1);
    assert_eq!(
        read(&["a", "b", "c"])
            .await
            .into_keys()
            .collect::<std::collections::BTreeSet<_>>(),
        ["b".to_owned(), "c".to_owned()].into()
    );
    assert_eq!(store.prune_buckets(5_000, "keep ").await.unwrap(), 0);
    assert_eq!(store.prune_buckets(i64::MAX, "keep ").await.unwrap(), 2);
    assert!(read(&["b", "c"]).await.is_empty());

    // Kept prefixes survive pruning; `None` deletes; prefixes delete exactly.
    let written = BucketWrites::from([
        ("keep x".to_owned(), Some((1.0, 0))),
        ("pair a@x.org 1".to_owned(), Some((1.0, 0))),
        ("pair a@x.org 2".to_owned(), Some((1.0, 0))),
        ("pair a@x.org.uk 1".to_owned(), Some((1.0, 0))),
        ("gone".to_owned(), Some((1.0, 0))),
    ]);
    let all: Vec<String> = written.keys().cloned().collect();
    assert!(store
        .update_buckets(&all, &mut |_| Some(written.clone()))
        .await
        .unwrap());
    assert!(store
        .update_buckets(&keys(&["gone"]), &mut |_| Some(BucketWrites::from([(
            "gone".to_owned(),
            None
        )])))
        .await
        .unwrap());
    assert_eq!(
        store
            .delete_buckets_with_prefix("pair a@x.org ")
            .await
            .unwrap(),
        2
    );
    assert_eq!(store.prune_buckets(1, "keep ").await.unwrap(), 1);
    assert_eq!(
        store
            .buckets(&all)
            .await
            .unwrap()
            .into_keys()
            .collect::<std::collections::BTreeSet<_>>(),
        ["keep x".to_owned()].into()
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn of_nodes_starting_with_different_keys_exactly_one_registers(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let outcome = store
                .register_server_key(&format!("key{i}"), &[i; 32], Timestamp::now())
                .await
                .unwrap();
            (i, outcome)
        }));
    }
    let mut registered = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (i, KeyRegistration::Registered) => registered.push(i),
            (_, KeyRegistration::Differs { .. }) => {}
            (_, KeyRegistration::Matches) => panic!("no two nodes had the same key"),
        }
    }
    assert_eq!(registered.len(), 1, "{registered:?}");
    let winner = registered[0];
    assert_eq!(
        store
            .register_server_key(&format!("key{winner}"), &[winner; 32], Timestamp::now())
            .await
            .unwrap(),
        KeyRegistration::Matches
    );
    // The right id with the wrong check value is another key too.
    assert_eq!(
        store
            .register_server_key(&format!("key{winner}"), &[99; 32], Timestamp::now())
            .await
            .unwrap(),
        KeyRegistration::Differs {
            stored_id: format!("key{winner}")
        }
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn a_sign_in_form_is_spent_once_however_many_try(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.spend_sign_in_form(&[7; 16], 1_000).await.unwrap()
        }));
    }
    let mut spent = 0;
    for task in tasks {
        spent += usize::from(task.await.unwrap());
    }
    assert_eq!(spent, 1);
    assert!(store.spend_sign_in_form(&[8; 16], 2_000).await.unwrap());
    // Forgotten once expired, and not before.
    assert_eq!(store.prune_spent_sign_in_forms(1_000).await.unwrap(), 1);
    assert!(!store.spend_sign_in_form(&[8; 16], 2_000).await.unwrap());
    assert!(store.spend_sign_in_form(&[7; 16], 3_000).await.unwrap());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_bucket_updates_lose_no_count(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 {
            store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            // The keys in another order each time: no deadlock either way.
            let mut keys = vec!["shared".to_owned(), format!("own {i}")];
            if i % 3 == 0 {
                keys.reverse();
            }
            store
                .update_buckets(&keys, &mut |found: Buckets| {
                    let count = found.get("shared").map_or(0.0, |(n, _)| *n);
                    let mut changed = BucketWrites::new();
                    changed.insert("shared".to_owned(), Some((count + 1.0, i)));
                    changed.insert(format!("own {i}"), Some((1.0, i)));
                    Some(changed)
                })
                .await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap());
    }
    let mut seen = Buckets::new();
    store
        .update_buckets(&["shared".to_owned()], &mut |found| {
            seen = found;
            None
        })
        .await
        .unwrap();
    assert_eq!(seen["shared"].0, 20.0);
    other.close().await;
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_are_created_found_and_listed_most_recently_seen_first(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[]).await;

    let key = SessionKey::generate();
    let bare = new_session(alice, &key, 1_000);
    let created = store.create_session(&bare).await.unwrap();
    let found = store.session(&key.digest()).await.unwrap().unwrap();
    assert_eq!(found.id, created.id);
    assert_eq!((found.ip, found.user_agent), (None, None));
    assert_eq!(found.csrf.token(), bare.csrf.token());
    assert!(store
        .session(&SessionKey::generate().digest())
        .await
        .unwrap()
        .is_none());

    let (_, second) = session_at(store, alice, 2_000).await;
    let (_, third) = session_at(store, alice, 3_000).await;
    session_at(store, bob, 9_000).await;
    store
        .touch_session(&key.digest(), Timestamp::from_millis(5_000))
        .await
        .unwrap();
    // Seen at the same moment: the newer session first.
    let (_, fourth) = session_at(store, alice, 5_000).await;
    let listed = |sessions: Vec<latchkey::domain::WebSession>| {
        sessions.iter().map(|s| s.id).collect::<Vec<_>>()
    };
    assert_eq!(
        listed(store.sessions_of(alice).await.unwrap()),
        [fourth, created.id, third, second]
    );
    let nobody = member(store, "nobody@example.org", &[]).await;
    assert!(store.sessions_of(nobody).await.unwrap().is_empty());

    // Touching an ended session is nothing to report.
    store
        .touch_session(
            &SessionKey::generate().digest(),
            Timestamp::from_millis(7_000),
        )
        .await
        .unwrap();
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_are_deleted_one_all_or_all_but_one(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let bob = member(store, "bob@example.org", &[]).await;
    let (first, first_id) = session_at(store, alice, 1_000).await;
    let (second, _) = session_at(store, alice, 2_000).await;
    let (bobs, _) = session_at(store, bob, 3_000).await;

    assert!(!store.delete_session(bob, first_id).await.unwrap());
    assert!(has_session(store, &first).await);
    assert!(store.delete_session(alice, first_id).await.unwrap());
    assert!(!store.delete_session(alice, first_id).await.unwrap());
    assert!(!has_session(store, &first).await);

    let (third, _) = session_at(store, alice, 4_000).await;
    assert_eq!(
        store
            .end_sessions(alice, Some(&third.digest()))
            .await
            .unwrap(),
        1
    );
    assert!(has_session(store, &third).await);
    assert!(!has_session(store, &second).await);
    // Keeping another account's session keeps nothing of this one's.
    assert_eq!(
        store
            .end_sessions(alice, Some(&bobs.digest()))
            .await
            .unwrap(),
        1
    );
    assert!(has_session(store, &bobs).await);
    assert_eq!(store.end_sessions(alice, None).await.unwrap(), 0);
    assert_eq!(store.end_sessions(bob, None).await.unwrap(), 1);
    assert!(store.sessions_of(bob).await.unwrap().is_empty());
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn expired_sessions_are_those_strictly_before_either_cutoff(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    // (created, last seen)
    let cases = [
        ((3_000, 4_999), false), // idle
        ((3_000, 5_000), true),  // seen just in time
        ((2_999, 9_000), false), // too old
        ((3_000, 9_000), true),  // started just in time
    ];
    let mut keys = Vec::new();
    for ((created, seen), _) in cases {
        let (key, _) = session_at(store, alice, created).await;
        store
            .touch_session(&key.digest(), Timestamp::from_millis(seen))
            .await
            .unwrap();
        keys.push(key);
    }
    let swept = store
        .delete_expired_sessions(Timestamp::from_millis(5_000), Timestamp::from_millis(3_000))
        .await
        .unwrap();
    assert_eq!(swept, 2);
    for (key, (times, kept)) in keys.iter().zip(cases) {
        assert_eq!(has_session(store, key).await, kept, "{times:?}");
    }
    assert_eq!(
        store
            .delete_expired_sessions(Timestamp::from_millis(5_000), Timestamp::from_millis(3_000))
            .await
            .unwrap(),
        0
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_notice_is_replaced_and_taken_once(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let store = store.as_ref();
    let alice = member(store, "alice@example.org", &[]).await;
    let (key, _) = session_at(store, alice, 1_000).await;
    let (other, _) = session_at(store, alice, 1_000).await;
    let digest = key.digest();
    assert_eq!(
        store.take_session_notice(&digest).await.unwrap(),
        Notice::default()
    );

    let flash = Notice {
        flash: Some("Saved.".into()),
        reveal: None,
    };
    let reveal = Notice {
        flash: None,
        reveal: Some(vec![0, 255, 7]),
    };
    store.set_session_notice(&digest, &flash).await.unwrap();
    store.set_session_notice(&digest, &reveal).await.unwrap();
    assert_eq!(
        store.take_session_notice(&other.digest()).await.unwrap(),
        Notice::default(),
        "another session's notice"
    );
    assert_eq!(store.take_session_notice(&digest).await.unwrap(), reveal);
    assert_eq!(
        store.take_session_notice(&digest).await.unwrap(),
        Notice::default()
    );

    store.set_session_notice(&digest, &flash).await.unwrap();
    store
        .set_session_notice(&digest, &Notice::default())
        .await
        .unwrap();
    assert_eq!(
        store.take_session_notice(&digest).await.unwrap(),
        Notice::default(),
        "an empty notice clears"
    );

    // A session that ended meanwhile is nothing to report.
    let ended = SessionKey::generate().digest();
    store.set_session_notice(&ended, &flash).await.unwrap();
    assert_eq!(
        store.take_session_notice(&ended).await.unwrap(),
        Notice::default()
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn pages_loading_at_once_show_a_notice_once(#[case] backend: Backend) {
    let (store, database) = fresh(backend).await;
    let other = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let alice = member(store.as_ref(), "alice@example.org", &[]).await;
    let (key, _) = session_at(store.as_ref(), alice, 1_000).await;
    let notice = Notice {
        flash: Some("Password changed.".into()),
        reveal: Some(vec![1, 2, 3]),
    };
    for round in 0..5 {
        store
            .set_session_notice(&key.digest(), &notice)
            .await
            .unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 {
                    store.clone()
                } else {
                    other.clone()
                };
                let digest = key.digest();
                tokio::spawn(async move { store.take_session_notice(&digest).await })
            })
            .collect();
        let mut shown = Vec::new();
        for task in tasks {
            let taken = task.await.unwrap().unwrap();
            if taken != Notice::default() {
                shown.push(taken);
            }
        }
        assert_eq!(shown, std::slice::from_ref(&notice), "round {round}");
    }
    other.close().await;
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ping_answers_until_the_store_is_closed(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    store.ping().await.unwrap();
    store.close().await;
    let after = store.ping().await;
    assert!(
        matches!(after, Err(StoreError::Unavailable(_))),
        "{after:?}"
    );
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread")]
async fn watching_again_replaces_the_sink_and_closing_stops_it(#[case] backend: Backend) {
    let (writer, database) = fresh(backend).await;
    let watched = store::open(&database.url, &Default::default())
        .await
        .unwrap();
    let sink = |seen: &Arc<Mutex<Vec<CredentialChange>>>| {
        let seen = seen.clone();
        Arc::new(move |change| seen.lock().unwrap().push(change))
    };
    let (first, second) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    );
    watched.watch_changes(sink(&first)).await.unwrap();
    watched.watch_changes(sink(&second)).await.unwrap();

    let alice = member(writer.as_ref(), "alice@example.org", &[]).await;
    writer.set_two_factor_enabled(alice, true).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while second.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(*second.lock().unwrap(), [CredentialChange::Account(alice)]);
    assert!(
        first.lock().unwrap().is_empty(),
        "the replaced sink still hears"
    );

    watched.close().await;
    writer.set_two_factor_enabled(alice, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        *second.lock().unwrap(),
        [CredentialChange::Account(alice)],
        "a closed store still delivers"
    );
    writer.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn deleting_an_account_takes_its_devices_sessions_and_credentials(#[case] backend: Backend) {
    let (store, _database) = fresh(backend).await;
    let gone = member(
        store.as_ref(),
        "gone@example.org",
        &[Permission::Synchronisation],
    )
    .await;
    let kept = member(
        store.as_ref(),
        "kept@example.org",
        &[Permission::Synchronisation],
    )
    .await;
    store
        .insert_devices(&[new_device(gone, "phone", 1_000)])
        .await
        .unwrap();
    store
        .insert_devices(&[new_device(kept, "laptop", 1_000)])
        .await
        .unwrap();
    let (gone_key, _) = session_at(store.as_ref(), gone, 1_000).await;
    let (kept_key, _) = session_at(store.as_ref(), kept, 1_000).await;
    let phone = device_ids(store.as_ref(), Some(gone)).await.remove(0);

    let mut tx = store.begin_write(Serialise::Administrators).await.unwrap();
    assert!(tx.delete_account(gone).await.unwrap());
    tx.commit().await.unwrap();

    assert!(store.account(gone).await.unwrap().is_none());
    assert!(store.credential(&phone).await.unwrap().is_none());
    assert!(device_ids(store.as_ref(), Some(gone)).await.is_empty());
    assert!(!has_session(store.as_ref(), &gone_key).await);
    assert!(store
        .account_by_email(&Email::parse("gone@example.org").unwrap())
        .await
        .unwrap()
        .is_none());
    // Nobody else's.
    assert_eq!(device_ids(store.as_ref(), Some(kept)).await.len(), 1);
    assert!(has_session(store.as_ref(), &kept_key).await);
    // A second time, there is nothing to delete.
    let mut tx = store.begin_write(Serialise::Administrators).await.unwrap();
    assert!(!tx.delete_account(gone).await.unwrap());
}
