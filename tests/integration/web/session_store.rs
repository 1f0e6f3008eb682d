//! The web-session methods of the Store interface, on the store directly:
//! what every backend must do, on the backend this binary runs on.

use std::net::IpAddr;

use latchkey::credential::{CsrfSecret, SessionKey};
use latchkey::domain::{AccountId, Email, Notice, Permissions, SessionId, Timestamp};
use latchkey::store::{self, NewAccount, NewSession, Store, StoreOptions};
use rstest::rstest;

use crate::helpers::{Backend, TestDatabase};
use crate::writes::AutoCommit;

async fn account(store: &dyn Store, email: &str) -> AccountId {
    store
        .create_account(&NewAccount {
            email: Email::parse(email).unwrap(),
            name: "x".into(),
            password_hash: "not a real hash".into(),
            permissions: Permissions::default(),
            created_at: Timestamp::from_millis(0),
        })
        .await
        .unwrap()
        .id
}

fn new_session(account: AccountId, key: &SessionKey, at: i64) -> NewSession {
    NewSession {
        digest: key.digest(),
        account_id: account,
        csrf: CsrfSecret::generate(),
        created_at: Timestamp::from_millis(at),
        ip: Some("192.0.2.7".parse::<IpAddr>().unwrap()),
        user_agent: Some("Browser/1.0".into()),
    }
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_are_stored_found_listed_and_deleted(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = store::open(&database.url, &StoreOptions::default())
        .await
        .unwrap();
    let alice = account(store.as_ref(), "alice@example.org").await;
    let bob = account(store.as_ref(), "bob@example.org").await;
    let (a1, a2, b1) = (
        SessionKey::generate(),
        SessionKey::generate(),
        SessionKey::generate(),
    );
    let first = store
        .create_session(&new_session(alice, &a1, 1_000))
        .await
        .unwrap();
    let second = store
        .create_session(&new_session(alice, &a2, 2_000))
        .await
        .unwrap();
    store
        .create_session(&new_session(bob, &b1, 3_000))
        .await
        .unwrap();

    let found = store.session(&a1.digest()).await.unwrap().unwrap();
    assert_eq!(found.id, first.id);
    assert_eq!(found.account_id, alice);
    assert_eq!(found.created_at, Timestamp::from_millis(1_000));
    assert_eq!(found.last_seen_at, Timestamp::from_millis(1_000));
    assert_eq!(found.ip, Some("192.0.2.7".parse().unwrap()));
    assert_eq!(found.user_agent.as_deref(), Some("Browser/1.0"));
    assert_eq!(found.csrf.token(), first.csrf.token());
    assert!(store
        .session(&SessionKey::generate().digest())
        .await
        .unwrap()
        .is_none());

    // Touching never moves last-seen backwards.
    store
        .touch_session(&a1.digest(), Timestamp::from_millis(5_000))
        .await
        .unwrap();
    store
        .touch_session(&a1.digest(), Timestamp::from_millis(4_000))
        .await
        .unwrap();
    let touched = store.session(&a1.digest()).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, Timestamp::from_millis(5_000));

    // Most recently seen first.
    let listed: Vec<SessionId> = store
        .sessions_of(alice)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, [first.id, second.id]);

    // One's own sessions only.
    assert!(!store.delete_session(bob, first.id).await.unwrap());
    assert!(store.delete_session(alice, second.id).await.unwrap());
    assert!(store.session(&a2.digest()).await.unwrap().is_none());

    let a3 = SessionKey::generate();
    store
        .create_session(&new_session(alice, &a3, 6_000))
        .await
        .unwrap();
    assert_eq!(
        store.end_sessions(alice, Some(&a3.digest())).await.unwrap(),
        1
    );
    assert!(store.session(&a3.digest()).await.unwrap().is_some());
    assert_eq!(store.end_sessions(alice, None).await.unwrap(), 1);
    assert!(store.sessions_of(alice).await.unwrap().is_empty());
    assert_eq!(store.sessions_of(bob).await.unwrap().len(), 1);
    store.close().await;
}

#[rstest]
#[case::sqlite(Backend::Sqlite)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn notices_are_taken_once_and_expired_sessions_swept(#[case] backend: Backend) {
    let database = TestDatabase::new(backend).await;
    let store = store::open(&database.url, &StoreOptions::default())
        .await
        .unwrap();
    let alice = account(store.as_ref(), "alice@example.org").await;
    let key = SessionKey::generate();
    store
        .create_session(&new_session(alice, &key, 10_000))
        .await
        .unwrap();

    assert_eq!(
        store.take_session_notice(&key.digest()).await.unwrap(),
        Notice::default()
    );
    let notice = Notice {
        flash: Some("Saved.".into()),
        reveal: Some(vec![1, 2, 3]),
    };
    store
        .set_session_notice(&key.digest(), &notice)
        .await
        .unwrap();
    assert_eq!(
        store.take_session_notice(&key.digest()).await.unwrap(),
        notice
    );
    assert_eq!(
        store.take_session_notice(&key.digest()).await.unwrap(),
        Notice::default()
    );

    // Idle: last seen before the first cutoff; too old: started before the second.
    let idle = SessionKey::generate();
    store
        .create_session(&new_session(alice, &idle, 1_000))
        .await
        .unwrap();
    let old = SessionKey::generate();
    store
        .create_session(&new_session(alice, &old, 2_000))
        .await
        .unwrap();
    store
        .touch_session(&old.digest(), Timestamp::from_millis(9_000))
        .await
        .unwrap();
    let swept = store
        .delete_expired_sessions(Timestamp::from_millis(5_000), Timestamp::from_millis(3_000))
        .await
        .unwrap();
    assert_eq!(swept, 2);
    assert!(store.session(&key.digest()).await.unwrap().is_some());
    store.close().await;
}
