//! What the backends guarantee: batches, durability, leases.

use aduan_core::{Channel, TicketCode};
use aduan_store::{Store, StoreError, StoreOptions, TicketFilter};
use std::sync::Arc;

use crate::{msg, op, stores};

#[tokio::test]
async fn a_failing_write_does_not_spoil_its_batch() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let missing: TicketCode = "ADU-00000000".parse().unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let r = store.assign(missing, "DPU".into(), op(), None).await;
                    assert!(matches!(r, Err(StoreError::TicketNotFound(_))), "{r:?}");
                } else {
                    store.ingest(msg(Channel::Web, &format!("b-{i}"), None, "teks")).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let page = store.tickets(&TicketFilter { limit: 100, ..Default::default() }).await.unwrap();
        assert_eq!(page.items.len(), 25);
    }
}

#[tokio::test]
async fn sqlite_writes_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let code = store.ingest(msg(Channel::Web, "w1", None, "x")).await.unwrap().ticket.unwrap();
    store.close().await;
    assert!(matches!(
        store.ingest(msg(Channel::Web, "w2", None, "y")).await,
        Err(StoreError::Closed)
    ));
    let store = Arc::new(Store::open(&url, StoreOptions::default()).await.unwrap());
    store.migrate().await.unwrap();
    assert!(store.ticket(code).await.unwrap().is_some());
}

#[tokio::test]
async fn a_lease_has_one_holder_until_it_expires_or_is_released() {
    use std::time::Duration;
    for (store, _g) in stores(StoreOptions::default()).await {
        let long = Duration::from_secs(30);
        assert!(store.lease_acquire("email:inbox", "a", long).await.unwrap());
        assert!(!store.lease_acquire("email:inbox", "b", long).await.unwrap());
        // Renewal by the holder succeeds; other names are independent.
        assert!(store.lease_acquire("email:inbox", "a", long).await.unwrap());
        assert!(store.lease_acquire("telegram:polling", "b", long).await.unwrap());
        assert_eq!(store.lease_holder("email:inbox").await.unwrap().as_deref(), Some("a"));

        // Someone else's release changes nothing; the holder's frees it at once.
        store.lease_release("email:inbox", "b").await.unwrap();
        assert!(!store.lease_acquire("email:inbox", "b", long).await.unwrap());
        store.lease_release("email:inbox", "a").await.unwrap();
        assert_eq!(store.lease_holder("email:inbox").await.unwrap(), None);
        assert!(store.lease_acquire("email:inbox", "b", long).await.unwrap());

        // A holder that stops renewing loses the lease once it expires.
        assert!(store.lease_acquire("imap:x", "dead", Duration::from_millis(50)).await.unwrap());
        assert!(!store.lease_acquire("imap:x", "c", long).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(store.lease_holder("imap:x").await.unwrap(), None);
        assert!(store.lease_acquire("imap:x", "c", long).await.unwrap());
        assert!(!store.lease_acquire("imap:x", "dead", long).await.unwrap());
    }
}

#[tokio::test]
async fn racing_instances_get_one_lease() {
    use std::time::Duration;
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .lease_acquire("race", &format!("i{i}"), Duration::from_secs(30))
                    .await
                    .unwrap()
            });
        }
        let won = tasks.join_all().await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1);
    }
}
