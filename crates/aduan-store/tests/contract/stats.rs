//! Statistics.

use aduan_core::{Channel, SlaPolicy, Status};
use aduan_store::{StoreOptions, TicketFilter};
use chrono::{Duration, Utc};

use crate::{msg, op, stores, ticket_of};

#[tokio::test]
async fn stats_count_by_group_with_deadline_compliance() {
    use aduan_store::{StatsGroup, StatsQuery};
    let opts = StoreOptions {
        sla: SlaPolicy { first_response: Duration::hours(-1), ..SlaPolicy::default() },
        ..StoreOptions::default()
    };
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for i in 0..4 {
            let ch = if i < 3 { Channel::Web } else { Channel::Sms };
            codes.push(
                store.ingest(msg(ch, &format!("s{i}"), None, "x")).await.unwrap().ticket.unwrap(),
            );
        }
        store.assign(codes[0], "DPU".into(), op(), None).await.unwrap();
        store.assign(codes[1], "DPU".into(), op(), None).await.unwrap();
        // Answered after the deadline (it was an hour before creation).
        store.reply(codes[0], "ok".into(), op()).await.unwrap();
        store.set_status(codes[0], Status::Resolved, op(), None).await.unwrap();
        assert!(store.set_category_if_unset(codes[1], "jalan".into()).await.unwrap());
        assert!(!store.set_category_if_unset(codes[1], "lain".into()).await.unwrap());

        let q = |group_by| StatsQuery { from: None, to: None, group_by, offset_secs: 7 * 3600 };
        let by_opd = store.stats(q(StatsGroup::Opd)).await.unwrap();
        let summary: Vec<_> = by_opd
            .iter()
            .map(|r| (r.key.clone(), r.total, r.open, r.resolved, r.overdue, r.responded_late))
            .collect();
        assert_eq!(summary, vec![(None, 2, 2, 0, 2, 2), (Some("DPU".into()), 2, 1, 1, 1, 2)]);
        assert_eq!(by_opd[1].compliance, Some(0.0));
        let by_channel = store.stats(q(StatsGroup::Channel)).await.unwrap();
        let keys: Vec<_> = by_channel.iter().map(|r| (r.key.clone(), r.total)).collect();
        assert_eq!(keys, vec![(Some("sms".into()), 1), (Some("web".into()), 3)]);
        let by_kec = store.stats(q(StatsGroup::Kecamatan)).await.unwrap();
        assert_eq!(
            by_kec.iter().map(|r| (r.key.clone(), r.total)).collect::<Vec<_>>(),
            vec![(None, 4)]
        );
        let by_cat = store.stats(q(StatsGroup::Category)).await.unwrap();
        assert_eq!(by_cat.iter().map(|r| r.total).sum::<i64>(), 4);
        let today = (Utc::now() + Duration::hours(7)).format("%Y-%m-%d").to_string();
        let by_day = store.stats(q(StatsGroup::Day)).await.unwrap();
        assert_eq!(
            by_day.iter().map(|r| (r.key.clone(), r.total)).collect::<Vec<_>>(),
            vec![(Some(today.clone()), 4)]
        );
        let future =
            StatsQuery { from: Some(Utc::now() + Duration::hours(1)), ..q(StatsGroup::Opd) };
        assert!(store.stats(future).await.unwrap().is_empty());
        let per_day =
            store.per_day_by_channel(Utc::now() - Duration::days(1), 7 * 3600).await.unwrap();
        assert_eq!(
            per_day.iter().map(|d| (d.day.clone(), d.channel, d.count)).collect::<Vec<_>>(),
            vec![(today.clone(), Channel::Sms, 1), (today, Channel::Web, 3)]
        );
        let by_cat_filter =
            TicketFilter { category: Some("jalan".into()), limit: 10, ..Default::default() };
        let listed = store.tickets(&by_cat_filter).await.unwrap();
        assert_eq!(listed.items.iter().map(|t| t.code).collect::<Vec<_>>(), vec![codes[1]]);
    }
}

// --- confirm: satisfaction statistics ---

#[tokio::test]
async fn satisfaction_counts_confirmations_reopenings_ratings_and_response_times() {
    use aduan_core::{Identity, IdentityKind};
    use aduan_store::{StatsGroup, StatsQuery};
    let opts = StoreOptions { ack_template: None, ..StoreOptions::default() };
    for (store, _g) in stores(opts.clone()).await {
        let mut codes = Vec::new();
        for (i, answer) in ["1 5", "1, nilai 4", "2 3", "sudah"].into_iter().enumerate() {
            let who = Identity::new(IdentityKind::Telegram, &format!("{i}")).ok();
            let code =
                ticket_of(&store, msg(Channel::Telegram, &format!("a{i}"), who.clone(), "x")).await;
            store.assign(code, "DPU".into(), op(), None).await.unwrap();
            store.reply(code, "sedang dicek".into(), op()).await.unwrap();
            store.set_status(code, Status::Resolved, op(), None).await.unwrap();
            store.ingest(msg(Channel::Telegram, &format!("b{i}"), who, answer)).await.unwrap();
            codes.push(code);
        }
        // An anonymous web report, resolved: asked (for the deadline), pending.
        let anon = store.ingest(msg(Channel::Web, "w", None, "x")).await.unwrap().ticket.unwrap();
        store.set_status(anon, Status::Resolved, op(), None).await.unwrap();
        let q = |group_by| StatsQuery { from: None, to: None, group_by, offset_secs: 7 * 3600 };
        let rows = store.satisfaction(q(StatsGroup::Opd)).await.unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        let (none, dpu) = (&rows[0], &rows[1]);
        assert_eq!((none.key.as_deref(), none.asked, none.pending), (None, 1, 1));
        assert_eq!(none.confirmed_share, None);
        assert_eq!(dpu.key.as_deref(), Some("DPU"));
        assert_eq!((dpu.asked, dpu.confirmed, dpu.reopened, dpu.expired), (4, 3, 1, 0));
        assert_eq!(dpu.confirmed_share, Some(0.75));
        assert_eq!(dpu.reopened_share, Some(0.25));
        assert_eq!((dpu.ratings, dpu.mean_rating), (3, Some(4.0)));
        assert_eq!((dpu.responded, dpu.response_buckets), (4, [4, 0, 0, 0]));
        assert!(dpu.response_p50_hours.unwrap() < 0.1 && dpu.response_p90_hours.is_some());
        let by_channel = store.satisfaction(q(StatsGroup::Channel)).await.unwrap();
        let tg = by_channel.iter().find(|r| r.key.as_deref() == Some("telegram")).unwrap();
        assert_eq!((tg.asked, tg.confirmed), (4, 3));
        // No category set: all five in one group.
        let by_cat = store.satisfaction(q(StatsGroup::Category)).await.unwrap();
        assert_eq!(by_cat.iter().map(|r| r.asked).sum::<i64>(), 5);
        // The closed tickets are counted as closed in the plain statistics.
        let plain = store.stats(q(StatsGroup::Opd)).await.unwrap();
        let dpu = plain.iter().find(|r| r.key.as_deref() == Some("DPU")).unwrap();
        assert_eq!((dpu.closed, dpu.open), (3, 1));
    }
}

// --- rules: routing quality ---

/// Issue 18.6: per OPD and overall, the share routed automatically, the share a person
/// re-disposed afterwards, the median hours to the first disposition (the router's
/// dispositions at injected times), and the counters kept on write for /metrics.
#[tokio::test]
async fn routing_quality_counts_automatic_and_redisposed_dispositions() {
    use aduan_store::{RouteAction, RouteResult, RoutingCount};
    for (store, _g) in stores(StoreOptions::default()).await {
        let mut codes = Vec::new();
        for i in 0..4 {
            let code = store.ingest(msg(Channel::Web, &format!("q{i}"), None, "x")).await.unwrap();
            codes.push(code.ticket.unwrap());
        }
        let created = store.ticket(codes[0]).await.unwrap().unwrap().summary.created_at;
        let auto = |opd: &str| {
            RouteResult::new(RouteAction::Assign { opd: opd.into(), note: "keyakinan 0.80".into() })
        };
        // Routed to DPU after 2 h, then re-disposed by an operator to DLH (and on to DINKES:
        // still one re-disposition).
        assert!(
            store.route_done(codes[0], auto("DPU"), created + Duration::hours(2)).await.unwrap()
        );
        store.assign(codes[0], "DLH".into(), op(), None).await.unwrap();
        store.assign(codes[0], "DINKES".into(), op(), None).await.unwrap();
        // Routed to DPU after 4 h and left there.
        assert!(
            store.route_done(codes[1], auto("DPU"), created + Duration::hours(4)).await.unwrap()
        );
        // Disposed by an operator at once.
        store.assign(codes[2], "DLH".into(), op(), None).await.unwrap();
        // codes[3] waits in triage.

        let rows = store.routing_quality(None, None).await.unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.opd.as_deref(), r.tickets, r.disposed, r.auto_routed, r.redisposed))
            .collect();
        assert_eq!(
            got,
            [(None, 4, 3, 2, 1), (Some("DLH"), 1, 1, 0, 0), (Some("DPU"), 2, 2, 2, 1)],
            "{rows:?}"
        );
        assert_eq!((rows[0].auto_share, rows[0].redisposed_share), (Some(0.5), Some(0.5)));
        assert_eq!((rows[2].auto_share, rows[2].redisposed_share), (Some(1.0), Some(0.5)));
        assert_eq!(rows[1].redisposed_share, None);
        let hours = |r: &aduan_store::RoutingQualityRow| r.median_disposition_hours.unwrap();
        assert!((hours(&rows[2]) - 2.0).abs() < 0.01, "{rows:?}");
        assert!((hours(&rows[0]) - 2.0).abs() < 0.01, "{rows:?}");
        assert!(hours(&rows[1]) < 0.1, "{rows:?}");
        // A period without tickets: only the overall row, empty.
        let later = store.routing_quality(Some(Utc::now() + Duration::hours(1)), None).await;
        assert_eq!(later.unwrap().iter().map(|r| r.tickets).collect::<Vec<_>>(), [0]);

        let counts = store.routing_counts().await.unwrap();
        assert_eq!(
            counts,
            [
                RoutingCount { opd: "DLH".into(), auto: 0, manual: 1, redisposed: 0 },
                RoutingCount { opd: "DPU".into(), auto: 2, manual: 0, redisposed: 1 },
            ]
        );
    }
}
