//! Statistics.

use aduan_core::{Channel, SlaPolicy, Status};
use aduan_store::{StoreOptions, TicketFilter};
use chrono::{Duration, Utc};

use crate::{msg, op, stores};

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
