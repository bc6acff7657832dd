//! Attachments still at the provider.

use aduan_core::{AttachmentRef, Channel, Identity, IdentityKind};
use aduan_store::{StoreOptions, TicketFilter};
use chrono::{Duration, Utc};

use crate::{msg, stores, tg};

#[tokio::test]
async fn provider_media_is_queued_until_fetched_or_given_up() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        let mut m = msg(Channel::Whatsapp, "wamid.img", Some(wa), "");
        let media = |r: &str| AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(r.into()),
        };
        m.attachments = vec![media("111"), media("222"), media("333")];
        store.ingest(m).await.unwrap();
        let due = store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap();
        assert_eq!(
            due.iter().map(|a| a.provider_ref.as_str()).collect::<Vec<_>>(),
            ["111", "222", "333"]
        );
        assert!(
            store.attachments_unfetched(vec![Channel::Messenger], 3, 10).await.unwrap().is_empty()
        );
        store
            .attachment_fetched(due[0].id, "ab".repeat(32), 1234, "image/png".into())
            .await
            .unwrap();
        // A retry waits for its time; giving up removes it from the queue for good.
        let later = Utc::now() + Duration::hours(1);
        store.attachment_fetch_failed(due[1].id, "HTTP 500".into(), Some(later)).await.unwrap();
        store.attachment_fetch_failed(due[2].id, "HTTP 404".into(), None).await.unwrap();
        assert!(
            store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap().is_empty()
        );
        store
            .attachment_fetch_failed(
                due[1].id,
                "HTTP 500".into(),
                Some(Utc::now() - Duration::seconds(1)),
            )
            .await
            .unwrap();
        let again = store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!((again[0].provider_ref.as_str(), again[0].attempts), ("222", 2));
        assert!(
            store.attachments_unfetched(vec![Channel::Whatsapp], 2, 10).await.unwrap().is_empty()
        );
        let code = store
            .tickets(&TicketFilter { limit: 10, ..TicketFilter::default() })
            .await
            .unwrap()
            .items[0]
            .code;
        let view = store.ticket(code).await.unwrap().unwrap();
        let a = &view.messages[0].attachments[0];
        assert_eq!((a.sha256.len(), a.size, a.content_type.as_str()), (64, 1234, "image/png"));
    }
}

#[tokio::test]
async fn attachments_at_the_provider_are_offered_until_fetched_or_given_up() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let at_provider = |file_id: &str| AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(file_id.into()),
        };
        let mut m = msg(Channel::Telegram, "42:7", tg("42"), "Foto jalan");
        m.attachments = vec![at_provider("file-a"), at_provider("file-b")];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let mut other = msg(Channel::Whatsapp, "wamid.1", None, "foto");
        other.attachments = vec![at_provider("media-1")];
        store.ingest(other).await.unwrap();

        let pending = store.attachments_unfetched(vec![Channel::Telegram], 8, 10).await.unwrap();
        let refs: Vec<_> = pending.iter().map(|p| p.provider_ref.as_str()).collect();
        assert_eq!(refs, ["file-a", "file-b"], "only the channel's own, oldest first");
        let (ab, ct) = ("ab".repeat(32), pending[0].content_type.clone());
        store.attachment_fetched(pending[0].id, ab, 1234, ct).await.unwrap();
        store.attachment_fetch_failed(pending[1].id, "file is too big".into(), None).await.unwrap();
        assert!(
            store.attachments_unfetched(vec![Channel::Telegram], 8, 10).await.unwrap().is_empty()
        );

        let view = store.ticket(code).await.unwrap().unwrap();
        let a = &view.messages[0].attachments;
        assert_eq!((a[0].sha256.as_str(), a[0].size), ("ab".repeat(32).as_str(), 1234));
        assert_eq!((a[1].sha256.as_str(), a[1].provider_ref.as_deref()), ("", Some("file-b")));
    }
}

// --- robust: attachment budget ---

/// The per-sender attachment budget: bytes stored in the last hour by one identity, on
/// any channel; a refused attachment leaves the queue for good and shows on its ticket.
#[tokio::test]
async fn the_attachment_budget_counts_what_a_sender_stored_this_hour() {
    use aduan_core::EventKind;
    let opts = StoreOptions { attachment_bytes_per_hour: Some(1000), ..StoreOptions::default() };
    for (store, _g) in stores(opts).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567891").unwrap();
        let other = Identity::new(IdentityKind::Whatsapp, "6281234567892").unwrap();
        assert_eq!(store.attachment_bytes_left(&wa).await.unwrap(), Some(1000), "unknown yet");
        let mut m = msg(Channel::Whatsapp, "wamid.budget", Some(wa.clone()), "Foto");
        let media = |r: &str| AttachmentRef {
            filename: None,
            content_type: "image/jpeg".into(),
            size: 0,
            sha256: String::new(),
            provider_ref: Some(r.into()),
        };
        m.attachments = vec![media("b1"), media("b2")];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let due = store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap();
        assert_eq!(store.attachment_bytes_left_for(due[1].id).await.unwrap(), Some(1000));
        store
            .attachment_fetched(due[0].id, "cd".repeat(32), 700, "image/png".into())
            .await
            .unwrap();
        assert_eq!(store.attachment_bytes_left_for(due[1].id).await.unwrap(), Some(300));
        assert_eq!(store.attachment_bytes_left(&wa).await.unwrap(), Some(300));
        assert_eq!(store.attachment_bytes_left(&other).await.unwrap(), Some(1000), "per sender");
        store.attachment_refused(due[1].id, "refused: over budget".into()).await.unwrap();
        assert!(
            store.attachments_unfetched(vec![Channel::Whatsapp], 3, 10).await.unwrap().is_empty()
        );
        let view = store.ticket(code).await.unwrap().unwrap();
        let refused: Vec<_> =
            view.events.iter().filter(|e| e.kind == EventKind::AttachmentRefused).collect();
        assert_eq!(refused.len(), 1, "{:?}", view.events);
        assert_eq!(refused[0].to.as_deref(), Some(due[1].id.to_string().as_str()));
        assert_eq!(refused[0].note.as_deref(), Some("refused: over budget"));
        // Refusing again, or refusing a stored one, changes nothing.
        store.attachment_refused(due[1].id, "again".into()).await.unwrap();
        store.attachment_refused(due[0].id, "stored".into()).await.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let n = view.events.iter().filter(|e| e.kind == EventKind::AttachmentRefused).count();
        assert_eq!(n, 1);
    }
    // No budget configured: no figure.
    for (store, _g) in stores(StoreOptions::default()).await {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567893").unwrap();
        assert_eq!(store.attachment_bytes_left(&wa).await.unwrap(), None);
    }
}

// --- inbox: attachments served ---

#[tokio::test]
async fn an_attachment_is_found_by_id_with_its_ticket() {
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut m = msg(Channel::Telegram, "tg-att-1", tg("7001"), "jalan rusak");
        let file = |name: &str, sha: &str| AttachmentRef {
            filename: Some(name.into()),
            content_type: "image/png".into(),
            size: 5,
            sha256: sha.into(),
            provider_ref: None,
        };
        m.attachments = vec![file("a.png", &"ab".repeat(32)), file("b.png", "")];
        let code = store.ingest(m).await.unwrap().ticket.unwrap();
        let view = store.ticket(code).await.unwrap().unwrap();
        let ids = view.messages[0].attachment_ids.clone();
        assert_eq!(ids.len(), 2, "one id per attachment, in order");
        let a = store.attachment_by_id(ids[0]).await.unwrap().unwrap();
        assert_eq!(
            (a.id, a.ticket, a.filename.as_deref(), a.content_type.as_str(), a.size),
            (ids[0], code, Some("a.png"), "image/png", 5)
        );
        assert_eq!(a.sha256, "ab".repeat(32));
        let b = store.attachment_by_id(ids[1]).await.unwrap().unwrap();
        assert_eq!((b.filename.as_deref(), b.sha256.as_str()), (Some("b.png"), ""));
        assert_eq!(store.attachment_by_id(ids[1] + 1000).await.unwrap(), None);
        // The ids are not serialized with the view (the web layer adds urls).
        let json = serde_json::to_value(&view).unwrap();
        assert!(json["messages"][0].get("attachment_ids").is_none());
    }
}
