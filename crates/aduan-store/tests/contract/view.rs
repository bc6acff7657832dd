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
        // Wildcards and punctuation in the query are not syntax (a word search since 0022).
        assert_eq!(by(TicketFilter { q: Some("100%".into()), ..none() }).await.len(), 6);
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

// --- search: full-text search ---

mod search {
    use aduan_core::{Channel, Identity, IdentityKind};
    use aduan_store::{Store, TicketFilter};
    use std::collections::HashSet;

    use crate::{msg, op, phone, stores};

    fn q(text: &str) -> TicketFilter {
        TicketFilter { q: Some(text.to_owned()), limit: 50, ..TicketFilter::default() }
    }

    async fn found(store: &Store, f: TicketFilter) -> Vec<aduan_core::TicketCode> {
        let page = store.tickets(&f).await.unwrap_or_else(|e| panic!("{:?}: {e}", f.q));
        page.items.iter().map(|t| t.code).collect()
    }

    async fn open(store: &Store, id: &str, text: &str) -> aduan_core::TicketCode {
        let sender = Some(Identity::new(IdentityKind::Telegram, id).unwrap());
        store.ingest(msg(Channel::Telegram, id, sender, text)).await.unwrap().ticket.unwrap()
    }

    /// Relevance before age, prefixes, diacritics either way, the reporter's name and phone.
    #[tokio::test]
    async fn search_ranks_matches_finds_prefixes_and_ignores_diacritics() {
        for (store, _g) in stores(aduan_store::StoreOptions::default()).await {
            let many = open(&store, "1", "Lampu lampu lampu mati semua, lampu taman juga").await;
            let once = open(&store, "2", "Lampu jalan mati di Jalan Kenanga, gelap sekali").await;
            let accent = open(&store, "3", "Sampah menumpuk di Jalán Mawar sudah seminggu").await;
            let other = open(&store, "4", "Air PDAM tidak mengalir").await;
            let mut m = msg(Channel::Sms, "5", phone("081234567890"), "Saluran tersumbat");
            m.sender.display_name = Some("Bambang Pamungkas".into());
            let named = store.ingest(m).await.unwrap().ticket.unwrap();
            let name = store.backend_name();

            // The ticket saying it four times comes before the newer one saying it once.
            assert_eq!(found(&store, q("lampu")).await, vec![many, once], "{name}");
            assert_eq!(found(&store, q("LAMPU mati")).await, vec![many, once], "{name}");
            // The last word is a prefix while it is being typed.
            assert_eq!(found(&store, q("lam")).await, vec![many, once], "{name}");
            assert_eq!(found(&store, q("kenan")).await, vec![once], "{name}");
            assert!(found(&store, q("kenan ")).await.is_empty(), "{name}: a finished word");
            // jalan finds Jalán and jalán finds Jalan.
            let both: HashSet<_> = [once, accent].into();
            for word in ["jalan", "jalán", "JALÁN"] {
                let hits: HashSet<_> = found(&store, q(word)).await.into_iter().collect();
                assert_eq!(hits, both, "{name}: {word}");
            }
            // The reporter's name, and their phone number in any usual form.
            assert_eq!(found(&store, q("pamungkas")).await, vec![named], "{name}");
            assert_eq!(found(&store, q("0812-3456-7890")).await, vec![named], "{name}");
            assert_eq!(found(&store, q("+6281234567890")).await, vec![named], "{name}");
            assert_eq!(found(&store, q("pdam")).await, vec![other], "{name}");
        }
    }

    /// Query syntax of either engine typed into the box is text: no error, no operator.
    #[tokio::test]
    async fn hostile_queries_are_words_never_errors() {
        for (store, _g) in stores(aduan_store::StoreOptions::default()).await {
            let lampu = open(&store, "1", "Lampu jalan mati").await;
            let sampah = open(&store, "2", "Sampah menumpuk").await;
            let name = store.backend_name();
            for hostile in [
                "\"",
                "\"lampu",
                "lampu\"",
                "*",
                "lampu*",
                "-lampu",
                "lampu:",
                "body:lampu",
                "NEAR(lampu jalan)",
                "lampu NOT",
                "^lampu",
                "(lampu",
                "lampu)",
                "'",
                "\\",
                "&",
                "|",
                "!lampu",
                "lampu:*",
                "':*",
                "{lampu}",
                "[",
                "+",
                "%",
                "_",
                "lampu & !",
            ] {
                let hits = found(&store, q(hostile)).await;
                assert!(hits.is_empty() || hits == vec![lampu], "{name}: {hostile:?} → {hits:?}");
            }
            // Operators are words: nothing has "or", so nothing is found; "-" is no NOT.
            assert!(found(&store, q("lampu OR sampah")).await.is_empty(), "{name}");
            assert!(found(&store, q("sampah NOT lampu")).await.is_empty(), "{name}");
            assert_eq!(found(&store, q("-lampu")).await, vec![lampu], "{name}");
            assert_eq!(found(&store, q("body:sampah")).await, Vec::new(), "{name}");
            assert_eq!(found(&store, q("sampah*")).await, vec![sampah], "{name}");
            assert!(found(&store, q("\"*:-")).await.is_empty(), "{name}: no word at all");
        }
    }

    /// An official's list (their OPD) searched, and every ranked page: each match once.
    #[tokio::test]
    async fn ranked_pages_yield_each_match_once_within_the_filters() {
        for (store, _g) in stores(aduan_store::StoreOptions::default()).await {
            let mut dpu = Vec::new();
            let mut all = Vec::new();
            for i in 0..9 {
                let text = format!("{} mati di gang {i}", "lampu ".repeat(1 + i % 4));
                let code = open(&store, &format!("l{i}"), &text).await;
                if i % 3 == 0 {
                    store.assign(code, "DPU".into(), op(), None).await.unwrap();
                    dpu.push(code);
                }
                all.push(code);
            }
            open(&store, "x", "Sampah menumpuk").await;
            let name = store.backend_name();
            let whole = found(&store, q("lampu")).await;
            assert_eq!(whole.iter().collect::<HashSet<_>>(), all.iter().collect(), "{name}");
            // Ranked: the two saying "lampu" four times first (the newer of them first), the
            // three saying it once last.
            assert_eq!(whole[..2], [all[7], all[3]], "{name}");
            assert_eq!(whole[6..], [all[8], all[4], all[0]], "{name}");
            // Page by page, two at a time: the same order, each ticket once.
            let mut paged = Vec::new();
            let mut cursor = None;
            loop {
                let f = TicketFilter { limit: 2, cursor, ..q("lampu") };
                let page = store.tickets(&f).await.unwrap();
                paged.extend(page.items.iter().map(|t| t.code));
                match page.next_cursor {
                    Some(c) => cursor = Some(c.parse().unwrap()),
                    None => break,
                }
            }
            assert_eq!(paged, whole, "{name}");
            // The official of DPU sees only DPU's, ranked the same way.
            let own = TicketFilter { opd: Some("DPU".into()), ..q("lampu") };
            let hits = found(&store, own).await;
            assert_eq!(hits.iter().collect::<HashSet<_>>(), dpu.iter().collect(), "{name}");
            let order: Vec<_> = whole.iter().filter(|c| dpu.contains(c)).copied().collect();
            assert_eq!(hits, order, "{name}");
        }
    }

    /// The index is kept by the writes themselves: a follow-up's words, a reporter who
    /// gives their name later, a merge moving the messages.
    #[tokio::test]
    async fn the_index_follows_follow_ups_names_and_merges() {
        for (store, _g) in stores(aduan_store::StoreOptions::default()).await {
            let name = store.backend_name();
            let first = open(&store, "1", "Jembatan retak").await;
            let mut again = msg(Channel::Telegram, "1b", crate::tg("1"), "Sekarang ada banjir");
            again.thread.ticket = Some(first);
            assert_eq!(store.ingest(again).await.unwrap().ticket, Some(first));
            assert_eq!(found(&store, q("banjir")).await, vec![first], "{name}");
            assert_eq!(found(&store, q("jembatan banjir")).await, vec![first], "{name}");

            // Unnamed at first, named in the next message.
            let mut m = msg(Channel::Sms, "s1", phone("081111111111"), "Pohon tumbang");
            m.sender.display_name = None;
            let tree = store.ingest(m).await.unwrap().ticket.unwrap();
            assert!(found(&store, q("Suparman")).await.is_empty(), "{name}");
            let mut m = msg(Channel::Sms, "s2", phone("081111111111"), "Mohon segera");
            m.sender.display_name = Some("Pak Suparman".into());
            store.ingest(m).await.unwrap();
            assert_eq!(found(&store, q("suparman")).await, vec![tree], "{name}");

            // Merged: the words now belong to the ticket that lives on.
            store.merge(first, tree, op()).await.unwrap();
            assert_eq!(found(&store, q("banjir")).await, vec![tree], "{name}");
            assert_eq!(found(&store, q("pohon jembatan")).await, vec![tree], "{name}");
            assert_eq!(found(&store, q("retak")).await, vec![tree], "{name}");
        }
    }
}

// --- pgsearch: search at scale ---

mod search_scale {
    use aduan_core::{Channel, Identity, IdentityKind, TicketCode};
    use aduan_store::{Store, StoreOptions, TicketFilter};
    use std::collections::HashSet;

    use crate::{docs_and_stale, fresh_pg, msg, op, stores, tg};

    pub(super) fn q(text: &str) -> TicketFilter {
        TicketFilter { q: Some(text.to_owned()), limit: 50, ..TicketFilter::default() }
    }

    pub(super) async fn found(store: &Store, f: TicketFilter) -> Vec<TicketCode> {
        let page = store.tickets(&f).await.unwrap_or_else(|e| panic!("{:?}: {e}", f.q));
        page.items.iter().map(|t| t.code).collect()
    }

    pub(super) async fn open(store: &Store, id: &str, text: &str) -> TicketCode {
        let sender = Some(Identity::new(IdentityKind::Telegram, id).unwrap());
        store.ingest(msg(Channel::Telegram, id, sender, text)).await.unwrap().ticket.unwrap()
    }

    async fn follow_up(store: &Store, sender: &str, id: &str, ticket: TicketCode, text: &str) {
        let mut m = msg(Channel::Telegram, id, tg(sender), text);
        m.thread.ticket = Some(ticket);
        assert_eq!(store.ingest(m).await.unwrap().ticket, Some(ticket));
    }

    /// Every message of a ticket is in its one document (the PostgreSQL trigger appends a
    /// new message's words since 0024): each word alone, words of different messages
    /// together; after a merge the moved messages are found under the target only, and a
    /// message after the merge joins the rebuilt document.
    #[tokio::test]
    async fn every_message_of_a_ticket_is_searchable_after_appends_and_merges() {
        for (store, _g) in stores(StoreOptions::default()).await {
            let name = store.backend_name();
            let bridge = open(&store, "1", "Jembatan retak di dusun").await;
            follow_up(&store, "1", "1b", bridge, "Sekarang ada banjir").await;
            follow_up(&store, "1", "1c", bridge, "Longsor juga di tebing").await;
            let tree = open(&store, "2", "Pohon tumbang").await;
            for word in ["retak", "banjir", "longsor", "retak longsor", "jembatan banjir tebing"] {
                assert_eq!(found(&store, q(word)).await, vec![bridge], "{name}: {word}");
            }
            assert!(found(&store, q("pohon banjir")).await.is_empty(), "{name}");

            store.merge(bridge, tree, op()).await.unwrap();
            for word in ["retak", "banjir", "longsor", "pohon longsor", "tumbang retak"] {
                assert_eq!(found(&store, q(word)).await, vec![tree], "{name}: {word}");
            }
            follow_up(&store, "2", "2b", tree, "Listrik padam sejak pagi").await;
            for word in ["listrik", "listrik banjir pohon", "padam jembatan"] {
                assert_eq!(found(&store, q(word)).await, vec![tree], "{name}: {word}");
            }
            assert!(found(&store, q("bogus")).await.is_empty(), "{name}");
        }
    }

    /// PostgreSQL: the document the trigger appends to equals the one `aduan_search_doc`
    /// builds from scratch, for every ticket, after follow-ups, a merge and more messages.
    #[tokio::test]
    async fn appended_documents_equal_rebuilt_ones() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        let a = open(&store, "1", "Lampu jalan mati di Jalán Kenanga").await;
        follow_up(&store, "1", "1b", a, "Masih mati, lampu kedip2").await;
        follow_up(&store, "1", "1c", a, "Sudah tiga hari gelap").await;
        let b = open(&store, "2", "Sampah menumpuk").await;
        follow_up(&store, "2", "2b", b, "Bau sekali").await;
        store.merge(a, b, op()).await.unwrap();
        follow_up(&store, "2", "2c", b, "Tolong segera diangkut").await;
        open(&store, "3", "Air PDAM tidak mengalir").await;
        let (docs, differ) = docs_and_stale(&mut c).await;
        assert_eq!((docs, differ), (3, 0));
        store.close().await;
    }

    /// PostgreSQL with statistics: a word in thousands of documents is listed newest first
    /// (no count over the GIN index, no parallel plan), paged each ticket once, and a rare
    /// one is ranked.
    #[tokio::test]
    async fn a_common_word_is_listed_newest_first_from_the_statistics() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        for sql in [
            "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
             last_message_at, first_response_due_at) SELECT 'ADU-' || lpad(i::text, 8, '0'), \
             'new', 'sms', now(), now(), now(), now() FROM generate_series(1, 8000) i",
            "INSERT INTO ticket_search (ticket_id, doc) SELECT id, to_tsvector('simple', \
             'lampu jalan mati' || CASE WHEN id % 1000 = 0 THEN ' kenanga' ELSE '' END \
             || CASE WHEN id % 5 = 0 THEN ' sampah' ELSE '' END) FROM tickets",
            "ANALYZE ticket_search",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        let plan = store.explain_tickets(&q("lampu")).await.unwrap().join("\n");
        assert!(!plan.contains("ticket_search_doc"), "no GIN scan for a common word:\n{plan}");
        assert!(!plan.contains("Gather"), "no parallel plan:\n{plan}");
        let newest: Vec<TicketCode> =
            (7951..=8000).rev().map(|i| format!("ADU-{i:08}").parse().unwrap()).collect();
        assert_eq!(found(&store, q("lampu")).await, newest);
        assert_eq!(found(&store, q("jalan mat")).await, newest);
        // Paged through: every ticket once.
        let (mut seen, mut cursor, mut pages) = (HashSet::new(), None, 0);
        loop {
            let f = TicketFilter { limit: 500, cursor, ..q("lampu") };
            let page = store.tickets(&f).await.unwrap();
            for t in &page.items {
                assert!(seen.insert(t.code), "{} twice", t.code);
            }
            pages += 1;
            match page.next_cursor {
                Some(next) => cursor = Some(next.parse().unwrap()),
                None => break,
            }
        }
        assert_eq!((seen.len(), pages), (8000, 16));
        // Eight documents have "kenanga": counted, ranked (all equal: newest first).
        let kenanga: Vec<TicketCode> =
            (1..=8).rev().map(|i| format!("ADU-{:08}", i * 1000).parse().unwrap()).collect();
        assert_eq!(found(&store, q("lampu kenanga")).await, kenanga);
        let plan = store.explain_tickets(&q("kenanga")).await.unwrap().join("\n");
        assert!(!plan.contains("Gather"), "no parallel plan:\n{plan}");
        // 1,600 documents have "sampah": more than the cap, not common by the statistics
        // (under 5,000): newest first from the matches (GIN, or a scan of this small table),
        // not the walk through the tickets; each ticket once.
        let plan = store.explain_tickets(&q("sampah")).await.unwrap().join("\n");
        assert!(!plan.contains("ticket_search_pkey"), "the matches, not a walk:\n{plan}");
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let f = TicketFilter { limit: 500, cursor, ..q("sampah") };
            let page = store.tickets(&f).await.unwrap();
            seen.extend(page.items.iter().map(|t| t.code));
            match page.next_cursor {
                Some(next) => cursor = Some(next.parse().unwrap()),
                None => break,
            }
        }
        let sampah: Vec<TicketCode> =
            (1..=1600).rev().map(|i| format!("ADU-{:08}", i * 5).parse().unwrap()).collect();
        assert_eq!(seen, sampah);
        store.close().await;
    }
}

// --- search: the tail at a million tickets ---
mod search_tail {
    use aduan_core::TicketCode;
    use aduan_store::TicketFilter;

    use super::search_scale::{found, open, q};
    use crate::{fresh_pg, no_receipts, stores};

    /// More documents than the rank cap (1,000) say "lampu". SQLite: a query of common words
    /// only takes its typed last word whole (no prefix merge), so the newer "lampunya" is
    /// not listed for "lampu"; with a rare word the prefix stays. A ranked query of a rare
    /// and a common word is scored on the rare one and still needs both (`LIST SUBQUERY`
    /// in its plan: the common word's matches, not its whole doclist in bm25).
    #[tokio::test]
    async fn common_words_skip_the_prefix_merge_and_the_bm25_count_on_sqlite() {
        for (store, _g) in stores(no_receipts()).await {
            if store.backend_name() != "sqlite" {
                continue;
            }
            let mut kenanga = Vec::new();
            for i in 0..1005 {
                let text = if i % 100 == 0 { "Lampu mati di Kenanga" } else { "Lampu mati" };
                let code = open(&store, &format!("s{i}"), text).await;
                if i % 100 == 0 {
                    kenanga.push(code);
                }
            }
            let twice = open(&store, "k2", "Lampu mati di Kenanga, kenanga gelap").await;
            let newer = open(&store, "n", "Lampunya kedip terus").await;
            let page = found(&store, q("lampu")).await;
            assert_eq!(page.len(), 50);
            assert!(!page.contains(&newer), "a common last word is whole: {page:?}");
            assert_eq!(found(&store, q("kedip lampu")).await, vec![newer], "rare + prefix");

            let plan = store.explain_tickets(&q("lampu kenanga")).await.unwrap().join("\n");
            assert!(plan.contains("LIST SUBQUERY"), "scored on the rare word:\n{plan}");
            // Ranked: the one saying "kenanga" twice first, then newest first.
            let mut want = vec![twice];
            want.extend(kenanga.iter().rev());
            assert_eq!(found(&store, q("lampu kenanga")).await, want);
            assert_eq!(found(&store, q("kenanga lampu")).await, want);
            assert!(found(&store, q("kenanga kedip")).await.is_empty(), "every word matches");
        }
    }

    /// PostgreSQL: a query the statistics do not call common is counted and ranked in one
    /// statement (`count(*) OVER ()`: a `WindowAgg`), the GIN matches sorted before their
    /// tickets are looked up; more than the cap turns it newest first, also when the
    /// filters leave none of the first matches (the fallback count).
    #[tokio::test]
    async fn a_rare_query_is_counted_and_ranked_in_one_statement_on_postgres() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        for sql in [
            "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
             last_message_at, first_response_due_at) SELECT 'ADU-' || lpad(i::text, 8, '0'), \
             'new', 'sms', now(), now(), now(), now() FROM generate_series(1, 3000) i",
            "INSERT INTO ticket_search (ticket_id, doc) SELECT id, to_tsvector('simple', \
             'aduan' || CASE WHEN id % 2 = 0 THEN ' sampah' ELSE '' END \
             || CASE WHEN id % 100 = 0 THEN ' kenanga' ELSE '' END \
             || CASE WHEN id = 500 THEN ' kenanga' ELSE '' END) FROM tickets",
            "UPDATE tickets SET opd = 'DPU' WHERE id > 2990",
            "ANALYZE ticket_search",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        let code = |i: i64| format!("ADU-{i:08}").parse::<TicketCode>().unwrap();
        let plan = store.explain_tickets(&q("kenanga")).await.unwrap().join("\n");
        assert!(plan.contains("WindowAgg"), "counted in the ranked statement:\n{plan}");
        let mut want = vec![code(500)];
        want.extend((1..=30).rev().filter(|i| *i != 5).map(|i| code(i * 100)));
        assert_eq!(found(&store, q("kenanga")).await, want);
        assert_eq!(found(&store, q("kenang")).await, want, "typed: a prefix");
        // 1,500 match "sampah": newest first, with and without a filter.
        let newest: Vec<TicketCode> = (1..=50).rev().map(|i| code(2900 + 2 * i)).collect();
        assert_eq!(found(&store, q("sampah")).await, newest);
        let f = TicketFilter { opd: Some("DPU".into()), ..q("sampah") };
        let dpu: Vec<TicketCode> = (1..=5).rev().map(|i| code(2990 + 2 * i)).collect();
        assert_eq!(found(&store, f).await, dpu);
        let f = TicketFilter { opd: Some("DINKES".into()), ..q("sampah kenanga") };
        assert!(found(&store, f).await.is_empty());
        store.close().await;
    }

    /// PostgreSQL: a search runs no statement to choose its mode. The word statistics are
    /// read once and kept a minute (`WordStats`), so a second search of a rare word is the
    /// one statement that answers it (counted, not timed).
    #[tokio::test]
    async fn a_second_search_of_a_rare_word_runs_only_its_answer_on_postgres() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        let mut want = Vec::new();
        for i in 0..6 {
            let text = if i % 2 == 0 { "Lampu mati di Desa Kober" } else { "Sampah menumpuk" };
            let code = open(&store, &format!("7{i}"), text).await;
            if i % 2 == 0 {
                want.insert(0, code);
            }
        }
        sqlx::query("ANALYZE ticket_search").execute(&mut c).await.unwrap();
        let statements = || aduan_store::testing::pg_statements(&store).unwrap();
        let before = statements();
        assert_eq!(found(&store, q("kober")).await, want);
        let first = statements() - before;
        assert_eq!(found(&store, q("kober")).await, want);
        let second = statements() - before - first;
        assert_eq!((first, second), (2, 1), "(statistics + answer, answer)");
        store.close().await;
    }
}

// --- pgsearch: one read of the matches ---
mod search_one_read {
    use aduan_core::TicketCode;
    use aduan_store::{Store, TicketFilter};

    use super::search_scale::{found, q};
    use crate::fresh_pg;

    fn code(i: i64) -> TicketCode {
        format!("ADU-{i:08}").parse().unwrap()
    }

    /// Every page of `f`, followed by its cursors: the tickets in order.
    async fn all_pages(store: &Store, f: TicketFilter) -> Vec<TicketCode> {
        let (mut seen, mut cursor) = (Vec::new(), None);
        loop {
            let page = store.tickets(&TicketFilter { cursor, ..f.clone() }).await.unwrap();
            seen.extend(page.items.iter().map(|t| t.code));
            match page.next_cursor {
                Some(next) => cursor = Some(next.parse().unwrap()),
                None => break,
            }
        }
        seen
    }

    /// PostgreSQL: a first page the statistics do not call common is answered by the
    /// statement that counts its matches, also over the cap (newest first, every match
    /// read once: no exact pre-count of a typed word, no second read of the matches); a
    /// query past the read limit (5,001, no statistics yet) is listed by the walk; paging
    /// yields each match once in every case.
    #[tokio::test]
    async fn an_over_cap_query_is_answered_by_its_counting_statement_on_postgres() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        // 8,000 documents: "aduan" in all (no statistics: not known as common), "sampah" in
        // half of the first 3,000 (1,500), "kenanga" in 800 and "kenangan" in 800 more.
        for sql in [
            "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
             last_message_at, first_response_due_at) SELECT 'ADU-' || lpad(i::text, 8, '0'), \
             'new', 'sms', now(), now(), now(), now() FROM generate_series(1, 8000) i",
            "INSERT INTO ticket_search (ticket_id, doc) SELECT id, to_tsvector('simple', \
             'aduan' || CASE WHEN id <= 3000 AND id % 2 = 0 THEN ' sampah' ELSE '' END \
             || CASE WHEN id % 10 = 1 THEN ' kenanga' WHEN id % 10 = 2 THEN ' kenangan' \
             ELSE '' END) FROM tickets",
            "UPDATE tickets SET opd = 'DPU' WHERE id % 3 = 0",
        ] {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        // "sampah" typed (a prefix), 1,500 exact matches: the counting statement itself.
        let plan = store.explain_tickets(&q("sampah")).await.unwrap().join("\n");
        assert!(plan.contains("WindowAgg"), "one statement counts and lists:\n{plan}");
        let sampah: Vec<TicketCode> = (1..=1500).rev().map(|i| code(2 * i)).collect();
        assert_eq!(found(&store, q("sampah")).await, sampah[..50]);
        assert_eq!(all_pages(&store, q("sampah")).await, sampah);
        let f = TicketFilter { opd: Some("DPU".into()), ..q("sampah") };
        let dpu: Vec<TicketCode> = (1..=500).rev().map(|i| code(6 * i)).collect();
        assert_eq!(all_pages(&store, f).await, dpu);
        // "kenanga" typed: 1,600 with "kenangan", newest first; with a space: 800, ranked
        // (all equal: newest first), paged each once.
        let typed: Vec<TicketCode> =
            (1..=8000).rev().filter(|i| matches!(i % 10, 1 | 2)).map(code).collect();
        assert_eq!(all_pages(&store, q("kenanga")).await, typed);
        let word: Vec<TicketCode> = (1..=8000).rev().filter(|i| i % 10 == 1).map(code).collect();
        assert_eq!(all_pages(&store, q("kenanga ")).await, word);
        // "aduan": 8,000 matches, no statistics: past the read limit, the walk.
        let newest: Vec<TicketCode> = (7951..=8000).rev().map(code).collect();
        assert_eq!(found(&store, q("aduan")).await, newest);
        assert_eq!(all_pages(&store, q("aduan")).await.len(), 8000);
        // Nothing passes the filter: an empty page, under and over the read limit.
        let f = TicketFilter { opd: Some("DINKES".into()), ..q("kenanga") };
        assert!(found(&store, f).await.is_empty());
        let f = TicketFilter { opd: Some("DINKES".into()), ..q("aduan") };
        assert!(found(&store, f).await.is_empty());
        store.close().await;
    }

    /// PostgreSQL: the filters with an index of their own are probed before a GIN match's
    /// ticket is read (a one-time filter of each lookup); the pages are those of the
    /// filters applied to the ticket, ranked and newest first, each match once.
    #[tokio::test]
    async fn filters_are_probed_before_a_matchs_ticket_is_read_on_postgres() {
        let Some((store, mut c)) = fresh_pg().await else { return };
        for sql in [
            "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
             last_message_at, first_response_due_at) SELECT 'ADU-' || lpad(i::text, 8, '0'), \
             CASE WHEN i % 2 = 0 THEN 'new' ELSE 'assigned' END, \
             CASE WHEN i % 5 = 0 THEN 'email' ELSE 'sms' END, now(), now(), now(), now() \
             FROM generate_series(1, 4000) i",
            "UPDATE tickets SET opd = CASE WHEN id % 3 = 0 THEN 'DPU' ELSE 'DLH' END, \
             category = CASE WHEN id % 7 = 0 THEN 'jalan' ELSE 'sampah' END",
            "INSERT INTO ticket_search (ticket_id, doc) SELECT id, to_tsvector('simple', \
             'aduan' || CASE WHEN id % 8 = 0 THEN ' kenanga' ELSE '' END \
             || CASE WHEN id % 2 = 1 THEN ' melati' ELSE '' END \
             || CASE WHEN id % 400 = 0 THEN ' kenanga' ELSE '' END) FROM tickets",
            "ANALYZE tickets",
        ] {
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await.unwrap();
        }
        let f = TicketFilter { opd: Some("DPU".into()), ..q("kenanga") };
        let plan = store.explain_tickets(&f).await.unwrap().join("\n");
        assert!(plan.contains("One-Time Filter"), "the filter probed first:\n{plan}");
        // "kenanga" (500, ranked: twice in every 400th first), "melati" (2,000, newest).
        let kenanga: Vec<i64> = (1..=4000)
            .rev()
            .filter(|i| i % 400 == 0)
            .chain((1..=4000).rev().filter(|i| i % 8 == 0 && i % 400 != 0))
            .collect();
        let melati: Vec<i64> = (1..=4000).rev().filter(|i| i % 2 == 1).collect();
        type Keep = fn(&i64) -> bool;
        let cases: [(TicketFilter, Keep); 5] = [
            (TicketFilter { opd: Some("DPU".into()), ..q("x") }, |i| i % 3 == 0),
            (
                TicketFilter {
                    opd: Some("DLH".into()),
                    status: Some(aduan_core::Status::New),
                    ..q("x")
                },
                |i| i % 3 != 0 && i % 2 == 0,
            ),
            (TicketFilter { channel: Some(aduan_core::Channel::Email), ..q("x") }, |i| i % 5 == 0),
            (TicketFilter { category: Some("jalan".into()), ..q("x") }, |i| i % 7 == 0),
            (TicketFilter { status: Some(aduan_core::Status::Assigned), ..q("x") }, |i| i % 2 == 1),
        ];
        for (f, keep) in cases {
            for (word, all) in [("kenanga", &kenanga), ("melati", &melati)] {
                let want: Vec<TicketCode> = all.iter().copied().filter(keep).map(code).collect();
                let f = TicketFilter { q: Some(word.into()), limit: 40, ..f.clone() };
                assert_eq!(all_pages(&store, f.clone()).await, want, "{word}: {f:?}");
            }
        }
        store.close().await;
    }
}
