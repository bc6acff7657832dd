//! Anonymous statistics: counts and deadline compliance by group, tickets per day.

use chrono::{DateTime, Utc};

use super::common::{overdue_sql, parse};
use crate::db::{Db, args};
use crate::types::{DayChannelCount, StatsGroup, StatsQuery, StatsRow};
use crate::{Result, Store, now};

pub(crate) async fn overdue_by_opd<D: Db>(
    c: &mut D,
    now: DateTime<Utc>,
) -> Result<Vec<(Option<String>, i64)>> {
    let sql = concat!(
        "SELECT t.opd, COUNT(*) AS n FROM tickets t WHERE ",
        overdue_sql!(),
        " GROUP BY t.opd"
    );
    let rows = c.fetch_all(sql, args![now]).await?;
    let mut out = rows
        .iter()
        .map(|r| Ok((r.get("opd")?, r.get("n")?)))
        .collect::<Result<Vec<(Option<String>, i64)>>>()?;
    // Backends order NULL differently; unassigned first.
    out.sort();
    Ok(out)
}

/// The office day of a ticket's creation, as `YYYY-MM-DD` text.
fn day_expr<D: Db>(offset_secs: i32) -> String {
    if D::IS_PG {
        format!(
            "to_char((t.created_at AT TIME ZONE 'UTC') + make_interval(secs => {offset_secs}), 'YYYY-MM-DD')"
        )
    } else {
        format!("substr(datetime(t.created_at, '{offset_secs:+} seconds'), 1, 10)")
    }
}

/// The statuses of a ticket someone still has to act on.
const OPEN_STATUSES_SQL: &str = "('new', 'awaiting_identity', 'assigned', 'in_progress')";

pub(crate) async fn stats<D: Db>(
    c: &mut D,
    q: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<Vec<StatsRow>> {
    let key = match q.group_by {
        StatsGroup::Opd => "t.opd".to_owned(),
        StatsGroup::Channel => "t.channel".to_owned(),
        StatsGroup::Category => "t.category".to_owned(),
        // Recorded by the router from the place named in the complaint.
        StatsGroup::Kecamatan => "t.kecamatan".to_owned(),
        StatsGroup::Day => day_expr::<D>(q.offset_secs),
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS total, \
         SUM(CASE WHEN t.status IN {OPEN_STATUSES_SQL} THEN 1 ELSE 0 END) AS open_n, \
         SUM(CASE WHEN t.status = 'resolved' THEN 1 ELSE 0 END) AS resolved_n, \
         SUM(CASE WHEN t.status = 'rejected' THEN 1 ELSE 0 END) AS rejected_n, \
         SUM(CASE WHEN t.status = 'closed' THEN 1 ELSE 0 END) AS closed_n, \
         SUM(CASE WHEN t.status IN {OPEN_STATUSES_SQL} AND t.paused_at IS NULL \
             AND ((t.first_responded_at IS NULL AND t.first_response_due_at < $3) \
             OR (t.resolution_due_at IS NOT NULL AND t.resolution_due_at < $3)) \
             THEN 1 ELSE 0 END) AS overdue_n, \
         SUM(CASE WHEN t.first_responded_at IS NOT NULL \
             AND t.first_responded_at <= t.first_response_due_at THEN 1 ELSE 0 END) AS on_time_n, \
         SUM(CASE WHEN (t.first_responded_at IS NOT NULL AND t.first_responded_at > t.first_response_due_at) \
             OR (t.first_responded_at IS NULL AND t.first_response_due_at < $3 \
                 AND t.status NOT IN ('merged')) THEN 1 ELSE 0 END) AS late_n \
         FROM tickets t WHERE t.status <> 'merged' \
         AND ($1 IS NULL OR t.created_at >= $1) AND ($2 IS NULL OR t.created_at < $2) \
         GROUP BY {key} ORDER BY {key}"
    );
    let rows = c.fetch_all(&sql, args![q.from, q.to, now]).await?;
    let mut out = rows
        .iter()
        .map(|r| {
            let on_time: i64 = r.get("on_time_n")?;
            let late: i64 = r.get("late_n")?;
            Ok(StatsRow {
                key: r.get("k")?,
                total: r.get("total")?,
                open: r.get("open_n")?,
                resolved: r.get("resolved_n")?,
                rejected: r.get("rejected_n")?,
                overdue: r.get("overdue_n")?,
                responded_on_time: on_time,
                responded_late: late,
                compliance: (on_time + late > 0).then(|| on_time as f64 / (on_time + late) as f64),
                closed: r.get("closed_n")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Backends order NULL differently: the ungrouped first.
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

pub(crate) async fn per_day_by_channel<D: Db>(
    c: &mut D,
    from: DateTime<Utc>,
    offset_secs: i32,
) -> Result<Vec<DayChannelCount>> {
    let day = day_expr::<D>(offset_secs);
    let sql = format!(
        "SELECT {day} AS d, t.channel, COUNT(*) AS n FROM tickets t \
         WHERE t.created_at >= $1 AND t.status <> 'merged' GROUP BY {day}, t.channel ORDER BY {day}, t.channel"
    );
    let rows = c.fetch_all(&sql, args![from]).await?;
    rows.iter()
        .map(|r| {
            Ok(DayChannelCount {
                day: r.get("d")?,
                channel: parse(&r.get::<String>("channel")?, "channel")?,
                count: r.get("n")?,
            })
        })
        .collect()
}

impl Store {
    /// Open tickets past their first-response deadline, per OPD (`None` = not yet assigned).
    pub async fn overdue_by_opd(&self) -> Result<Vec<(Option<String>, i64)>> {
        let now = now();
        read!(self, |c| overdue_by_opd(c, now))
    }

    /// Anonymous counts and deadline compliance, grouped as asked.
    pub async fn stats(&self, q: StatsQuery) -> Result<Vec<StatsRow>> {
        let now = now();
        read!(self, |c| stats(c, &q, now))
    }

    /// Tickets opened per office day and channel since `from`.
    pub async fn per_day_by_channel(
        &self,
        from: DateTime<Utc>,
        offset_secs: i32,
    ) -> Result<Vec<DayChannelCount>> {
        read!(self, |c| per_day_by_channel(c, from, offset_secs))
    }
}

// --- confirm: satisfaction statistics ---

/// The key expression of a group, as [`stats`] groups.
fn group_key<D: Db>(q: &StatsQuery) -> String {
    match q.group_by {
        StatsGroup::Opd => "t.opd".to_owned(),
        StatsGroup::Channel => "t.channel".to_owned(),
        StatsGroup::Category => "t.category".to_owned(),
        StatsGroup::Kecamatan => "t.kecamatan".to_owned(),
        StatsGroup::Day => day_expr::<D>(q.offset_secs),
    }
}

/// The `p`-quantile (nearest rank) of sorted `v`.
fn quantile(v: &[i64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let rank = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1] as f64 / 3600.0)
}

/// Resident satisfaction by group (issue 17 item 5): confirmations by outcome (asked in
/// `from..to`), ratings, and the first-response time distribution of the tickets created in
/// `from..to`.
pub(crate) async fn satisfaction<D: Db>(
    c: &mut D,
    q: &StatsQuery,
) -> Result<Vec<crate::types::SatisfactionRow>> {
    use std::collections::BTreeMap;
    let key = group_key::<D>(q);
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS asked, \
         SUM(CASE WHEN cf.outcome = 'fixed' THEN 1 ELSE 0 END) AS fixed_n, \
         SUM(CASE WHEN cf.outcome = 'not_fixed' THEN 1 ELSE 0 END) AS not_fixed_n, \
         SUM(CASE WHEN cf.outcome = 'expired' THEN 1 ELSE 0 END) AS expired_n, \
         SUM(CASE WHEN cf.outcome IS NULL THEN 1 ELSE 0 END) AS pending_n, \
         COUNT(cf.rating) AS rated_n, SUM(cf.rating) AS rating_sum \
         FROM confirmations cf JOIN tickets t ON t.id = cf.ticket_id \
         WHERE (cf.outcome IS NULL OR cf.outcome <> 'superseded') \
         AND ($1 IS NULL OR cf.asked_at >= $1) AND ($2 IS NULL OR cf.asked_at < $2) \
         GROUP BY {key}"
    );
    let mut out: BTreeMap<Option<String>, crate::types::SatisfactionRow> = BTreeMap::new();
    let blank = |k: Option<String>| crate::types::SatisfactionRow {
        key: k,
        asked: 0,
        confirmed: 0,
        reopened: 0,
        expired: 0,
        pending: 0,
        confirmed_share: None,
        reopened_share: None,
        ratings: 0,
        mean_rating: None,
        responded: 0,
        response_p50_hours: None,
        response_p90_hours: None,
        response_buckets: [0; 4],
    };
    for r in c.fetch_all(&sql, args![q.from, q.to]).await? {
        let k: Option<String> = r.get("k")?;
        let row = out.entry(k.clone()).or_insert_with(|| blank(k));
        row.asked = r.get("asked")?;
        row.confirmed = r.get("fixed_n")?;
        row.reopened = r.get("not_fixed_n")?;
        row.expired = r.get("expired_n")?;
        row.pending = r.get("pending_n")?;
        row.ratings = r.get("rated_n")?;
        let sum: Option<i64> = r.get("rating_sum")?;
        let decided = row.confirmed + row.reopened + row.expired;
        if decided > 0 {
            row.confirmed_share = Some(row.confirmed as f64 / decided as f64);
            row.reopened_share = Some(row.reopened as f64 / decided as f64);
        }
        if row.ratings >= crate::types::MIN_RATINGS {
            row.mean_rating = sum.map(|s| s as f64 / row.ratings as f64);
        }
    }
    let sql = format!(
        "SELECT {key} AS k, t.created_at, t.first_responded_at FROM tickets t \
         WHERE t.first_responded_at IS NOT NULL AND t.status <> 'merged' \
         AND ($1 IS NULL OR t.created_at >= $1) AND ($2 IS NULL OR t.created_at < $2)"
    );
    let mut times: BTreeMap<Option<String>, Vec<i64>> = BTreeMap::new();
    for r in c.fetch_all(&sql, args![q.from, q.to]).await? {
        let created: DateTime<Utc> = r.get("created_at")?;
        let answered: DateTime<Utc> = r.get("first_responded_at")?;
        let secs = (answered - created).num_seconds().max(0);
        times.entry(r.get("k")?).or_default().push(secs);
    }
    for (k, mut v) in times {
        v.sort_unstable();
        let row = out.entry(k.clone()).or_insert_with(|| blank(k));
        row.responded = v.len() as i64;
        row.response_p50_hours = quantile(&v, 0.5);
        row.response_p90_hours = quantile(&v, 0.9);
        for s in &v {
            let b = match *s {
                s if s <= 3600 => 0,
                s if s <= 86_400 => 1,
                s if s <= 3 * 86_400 => 2,
                _ => 3,
            };
            row.response_buckets[b] += 1;
        }
    }
    Ok(out.into_values().collect())
}

impl Store {
    /// Resident satisfaction by group: confirmations, reopenings, ratings, response times.
    pub async fn satisfaction(&self, q: StatsQuery) -> Result<Vec<crate::types::SatisfactionRow>> {
        read!(self, |c| satisfaction(c, &q))
    }
}

// --- rules: routing quality ---

/// Routing quality per OPD and overall (the first row, `opd: None`) over the tickets created
/// in `from..to`: each ticket with its first disposition (the first `assigned` event naming
/// an OPD), whether the router made it, and whether a person re-disposed it to another OPD
/// afterwards. One pass over the tickets of the period, two index lookups per ticket
/// (`events_ticket`).
pub(crate) async fn routing_quality<D: Db>(
    c: &mut D,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<crate::types::RoutingQualityRow>> {
    use std::collections::BTreeMap;
    let sql = "SELECT t.created_at, e.actor, e.to_value, e.at, \
         CASE WHEN EXISTS (SELECT 1 FROM events r WHERE r.ticket_id = t.id \
             AND r.kind = 'assigned' AND r.id > e.id AND r.actor <> 'system' \
             AND r.to_value IS NOT NULL AND r.to_value <> e.to_value) THEN 1 ELSE 0 END AS moved \
         FROM tickets t LEFT JOIN events e ON e.id = (SELECT MIN(f.id) FROM events f \
             WHERE f.ticket_id = t.id AND f.kind = 'assigned' AND f.to_value IS NOT NULL) \
         WHERE t.status <> 'merged' \
         AND ($1 IS NULL OR t.created_at >= $1) AND ($2 IS NULL OR t.created_at < $2)";
    #[derive(Default)]
    struct Acc {
        tickets: i64,
        auto: i64,
        moved: i64,
        secs: Vec<i64>,
    }
    let mut all = Acc::default();
    let mut by_opd: BTreeMap<String, Acc> = BTreeMap::new();
    for r in c.fetch_all(sql, args![from, to]).await? {
        all.tickets += 1;
        let Some(opd) = r.get::<Option<String>>("to_value")? else { continue };
        let created: DateTime<Utc> = r.get("created_at")?;
        let at: DateTime<Utc> = r.get("at")?;
        let auto = r.get::<String>("actor")? == "system";
        let moved = auto && r.get::<i64>("moved")? == 1;
        let secs = (at - created).num_seconds().max(0);
        all.auto += i64::from(auto);
        all.moved += i64::from(moved);
        all.secs.push(secs);
        let acc = by_opd.entry(opd).or_default();
        acc.tickets += 1;
        acc.auto += i64::from(auto);
        acc.moved += i64::from(moved);
        acc.secs.push(secs);
    }
    let row = |opd: Option<String>, mut a: Acc| {
        a.secs.sort_unstable();
        let share = |n: i64, of: i64| (of > 0).then(|| n as f64 / of as f64);
        crate::types::RoutingQualityRow {
            opd,
            tickets: a.tickets,
            disposed: a.secs.len() as i64,
            auto_routed: a.auto,
            redisposed: a.moved,
            auto_share: share(a.auto, a.tickets),
            redisposed_share: share(a.moved, a.auto),
            median_disposition_hours: quantile(&a.secs, 0.5),
        }
    };
    let mut out = vec![row(None, all)];
    out.extend(by_opd.into_iter().map(|(k, a)| row(Some(k), a)));
    Ok(out)
}

/// The routing counters per OPD (`routing_counts`, kept by every disposition), by OPD code.
pub(crate) async fn routing_counts<D: Db>(c: &mut D) -> Result<Vec<crate::types::RoutingCount>> {
    let rows = c
        .fetch_all(
            "SELECT opd, auto_n, manual_n, redisposed_n FROM routing_counts ORDER BY opd",
            Vec::new(),
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(crate::types::RoutingCount {
                opd: r.get("opd")?,
                auto: r.get("auto_n")?,
                manual: r.get("manual_n")?,
                redisposed: r.get("redisposed_n")?,
            })
        })
        .collect()
}

impl Store {
    /// Routing quality per OPD and overall (first row) over the tickets created in
    /// `from..to`: share routed automatically, share re-disposed by a person afterwards,
    /// median hours to the first disposition.
    pub async fn routing_quality(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<crate::types::RoutingQualityRow>> {
        read!(self, |c| routing_quality(c, from, to))
    }

    /// The routing counters per OPD since the start, kept on write (for `/metrics`).
    pub async fn routing_counts(&self) -> Result<Vec<crate::types::RoutingCount>> {
        read!(self, |c| routing_counts(c))
    }
}
