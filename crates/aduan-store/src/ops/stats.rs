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
