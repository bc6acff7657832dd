//! The ticket list: filters and keyset pages.

use aduan_core::{Channel, SlaPolicy, Status};
use aduan_store::{StoreOptions, TicketFilter};
use chrono::Duration;

use crate::{msg, op, stores};

#[tokio::test]
async fn listing_filters_and_pages() {
    let opts = StoreOptions {
        sla: SlaPolicy { first_response: Duration::hours(-1), ..SlaPolicy::default() },
        ..StoreOptions::default()
    };
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for i in 0..7 {
            let ch = if i % 2 == 0 { Channel::Web } else { Channel::Sms };
            let text = if i == 3 { "Pohon TUMBANG di jalan" } else { "lainnya 100%" };
            let m = msg(ch, &format!("p{i}"), None, text);
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        store.assign(codes[1], "DPU".into(), op(), None).await.unwrap();
        store.reply(codes[2], "ok".into(), op()).await.unwrap();

        // The codes a filter finds, with `limit: 50` unless it sets one.
        let find = |f: TicketFilter| {
            let store = store.clone();
            async move {
                let f = TicketFilter { limit: if f.limit == 0 { 50 } else { f.limit }, ..f };
                let page = store.tickets(&f).await.unwrap();
                (page.items.iter().map(|t| t.code).collect::<Vec<_>>(), page.next_cursor)
            }
        };
        let none = TicketFilter::default;

        let (page1, next) = find(TicketFilter { limit: 3, ..none() }).await;
        assert_eq!(page1, vec![codes[6], codes[5], codes[4]]);
        let cursor = Some(next.unwrap().parse().unwrap());
        let (page2, next) = find(TicketFilter { limit: 3, cursor, ..none() }).await;
        assert_eq!(page2, vec![codes[3], codes[2], codes[1]]);
        let cursor = Some(next.unwrap().parse().unwrap());
        let (page3, next) = find(TicketFilter { limit: 3, cursor, ..none() }).await;
        assert_eq!((page3, next), (vec![codes[0]], None));

        let by = |f: TicketFilter| async move { find(f).await.0 };
        assert_eq!(by(TicketFilter { channel: Some(Channel::Sms), ..none() }).await.len(), 3);
        assert_eq!(by(TicketFilter { opd: Some("DPU".into()), ..none() }).await, vec![codes[1]]);
        assert_eq!(
            by(TicketFilter { status: Some(Status::Assigned), ..none() }).await,
            vec![codes[1]]
        );
        assert_eq!(by(TicketFilter { q: Some("tumbang".into()), ..none() }).await, vec![codes[3]]);
        let code_q = Some(codes[5].to_string().to_lowercase());
        assert_eq!(by(TicketFilter { q: code_q, ..none() }).await, vec![codes[5]]);
        // LIKE wildcards in the query are literal.
        assert_eq!(by(TicketFilter { q: Some("0%".into()), ..none() }).await.len(), 6);
        assert!(by(TicketFilter { q: Some("_".into()), ..none() }).await.is_empty());
        // Every ticket was due an hour before it was made; the one answered is not overdue.
        let overdue = store
            .tickets(&TicketFilter { overdue: Some(true), limit: 50, ..none() })
            .await
            .unwrap();
        assert_eq!(overdue.items.len(), 6);
        assert!(overdue.items.iter().all(|t| t.overdue));
        assert_eq!(by(TicketFilter { overdue: Some(false), ..none() }).await, vec![codes[2]]);
        let by_opd = store.overdue_by_opd().await.unwrap();
        assert_eq!(by_opd, vec![(None, 5), (Some("DPU".to_string()), 1)]);
    }
}

// --- robust: status answer ---

/// "CEK" about a ticket merged into one that was merged in turn: the answer is about the
/// end of the chain (read in one go through `follow_merges`).
#[tokio::test]
async fn the_status_answer_follows_a_chain_of_merges() {
    let mut opts = StoreOptions { ack_template: None, ..StoreOptions::default() };
    opts.opd_names.insert("DPU".into(), "Dinas Pekerjaan Umum".into());
    for (store, _g) in stores(opts).await {
        let mut codes = Vec::new();
        for i in 0..3 {
            let m = msg(Channel::Web, &format!("chain{i}"), None, "Got mampet di Pasar Wage");
            codes.push(store.ingest(m).await.unwrap().ticket.unwrap());
        }
        let (first, middle, last) = (codes[0], codes[1], codes[2]);
        store.merge(first, middle, op()).await.unwrap();
        store.merge(middle, last, op()).await.unwrap();
        store.assign(last, "DPU".into(), op(), None).await.unwrap();
        let text = store.status_answer(first).await.unwrap().unwrap();
        assert!(
            text.starts_with(&format!(
                "Aduan {first} sudah digabung ke aduan {last}. Status aduan {last}: \
                 terdisposisi, ditangani oleh Dinas Pekerjaan Umum."
            )),
            "{text}"
        );
        let text = store.status_answer(middle).await.unwrap().unwrap();
        assert!(text.starts_with(&format!("Aduan {middle} sudah digabung ke aduan {last}.")));
    }
}
