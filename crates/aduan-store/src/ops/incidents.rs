//! Incidents (issue 20): many tickets reporting one problem.
//!
//! - **Indexing.** When the routing worker records its decision (`route_done`, every new
//!   ticket passes there), [`after_route`] stores the ticket's place cell
//!   (`aduan_core::incident::cell` of its coordinates) and term signature, then looks for
//!   candidates.
//! - **Candidates** ([`candidates`]): open, unmerged tickets created within `window_days`
//!   of the ticket, found through two indexes of migration 0021 — `tickets_place_cell`
//!   (`place_cell IN` the nine cells around the point, `created_at` in range) and
//!   `tickets_desa` (same gazetteer desa, `created_at` in range) — at most
//!   [`CANDIDATE_LIMIT`] rows each, never a scan. Each is scored by
//!   `aduan_core::incident::score`; the best member per incident stands for it; dismissed
//!   pairs (either way round, and every member of a dismissed ticket's incident) are left
//!   out.
//! - **Joining.** With `[incidents] auto_join` the ticket joins the best candidate's
//!   incident when it scores `auto_join_score` or more (an `incident` event `auto_joined`
//!   on both tickets); otherwise the ticket view lists the candidates from
//!   `suggest_score` on (`incident_suggestions`) and an operator joins or dismisses
//!   ([`incident_action`]). Joining a ticket that has no incident yet makes one of the two.
//!   A ticket leaving an incident of two dissolves it.
//! - **Deadlines run from the first report**: on every join each member's deadlines become
//!   the earliest among the members.
//! - **Acting once for all**: [`other_members`] gives the rest of an incident; the store's
//!   `assign`, `set_status`, `reply` and `relay_reply` apply to each of them too (each
//!   reporter answered on their own channel, one outbox row each), and `notify_once` claims a
//!   disposition for a member without sending when another member's OPD heard of the
//!   incident already ([`disposition_done`]).

use std::collections::{BTreeMap, BTreeSet};

use aduan_core::incident::{self, Agreement, Facts, IncidentPolicy, Verdict};
use aduan_core::{Actor, EventKind, Location, Status, TicketCode};
use chrono::{DateTime, Duration, Utc};

use super::common::{audit, event, lock_tickets, parse, require_ticket};
use crate::db::{Db, Row, Value, args};
use crate::types::{IncidentAction, IncidentRef, IncidentSuggestion, TicketSummary, TicketView};
use crate::{Result, Store, StoreError, now};

/// Most rows one candidate query reads (per index).
pub const CANDIDATE_LIMIT: i64 = 200;

/// Most suggestions a ticket shows.
const MAX_SUGGESTIONS: usize = 5;

const PROBE_COLS: &str = "t.id, t.code, t.lat, t.lon, t.place, t.kecamatan, t.category, \
     t.opd, t.created_at, t.terms, t.incident_id";

/// A ticket as the matcher sees it.
#[derive(Debug, Clone)]
struct Probe {
    id: i64,
    code: TicketCode,
    location: Option<Location>,
    place: Option<String>,
    kecamatan: Option<String>,
    category: Option<String>,
    opd: Option<String>,
    created_at: DateTime<Utc>,
    terms: Vec<String>,
    incident_id: Option<i64>,
}

fn probe(row: &Row) -> Result<Probe> {
    let terms: Option<String> = row.get("terms")?;
    Ok(Probe {
        id: row.get("id")?,
        code: parse(&row.get::<String>("code")?, "ticket code")?,
        location: super::common::location(row.get("lat")?, row.get("lon")?),
        place: row.get("place")?,
        kecamatan: row.get("kecamatan")?,
        category: row.get("category")?,
        opd: row.get("opd")?,
        created_at: row.get("created_at")?,
        terms: terms.as_deref().map(incident::signature_terms).unwrap_or_default(),
        incident_id: row.get("incident_id")?,
    })
}

async fn load_probe<D: Db>(c: &mut D, id: i64) -> Result<Option<Probe>> {
    let sql = format!("SELECT {PROBE_COLS} FROM tickets t WHERE t.id = $1");
    c.fetch_optional(&sql, args![id]).await?.map(|r| probe(&r)).transpose()
}

/// Stores the ticket's place cell and term signature (of its resident's messages).
pub(crate) async fn index_ticket<D: Db>(c: &mut D, ticket_id: i64) -> Result<()> {
    let texts: Vec<String> = c
        .fetch_all_scalar(
            "SELECT text FROM messages WHERE ticket_id = $1 AND direction = 'in' \
             AND automated = $2 ORDER BY id LIMIT 20",
            args![ticket_id, false],
        )
        .await?;
    let row = c.fetch_one("SELECT lat, lon FROM tickets WHERE id = $1", args![ticket_id]).await?;
    let cell = super::common::location(row.get("lat")?, row.get("lon")?).map(incident::cell);
    let sig = incident::signature(&texts.join("\n"));
    c.execute(
        "UPDATE tickets SET place_cell = $2, terms = $3 WHERE id = $1",
        args![ticket_id, cell, sig],
    )
    .await?;
    Ok(())
}

/// A scored candidate.
#[derive(Debug, Clone)]
struct Scored {
    code: TicketCode,
    id: i64,
    facts: Facts,
    score: f64,
    reports: i64,
}

fn facts(me: &Probe, other: &Probe) -> Facts {
    let distance_m = match (me.location, other.location) {
        (Some(a), Some(b)) => Some(incident::distance_m(a, b)),
        _ => None,
    };
    let same_desa = me.place.is_some()
        && me.place == other.place
        && (me.kecamatan.is_none() || other.kecamatan.is_none() || me.kecamatan == other.kecamatan);
    Facts {
        distance_m,
        same_desa,
        category: Agreement::of(me.category.as_deref(), other.category.as_deref()),
        opd: Agreement::of(me.opd.as_deref(), other.opd.as_deref()),
        age: (me.created_at - other.created_at).abs(),
        cosine: incident::cosine(&me.terms, &other.terms),
    }
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The candidate queries for a ticket (SQL and parameters): by place cell, by desa.
fn candidate_sql(me: &Probe, policy: &IncidentPolicy) -> Vec<(String, Vec<Value>)> {
    let window = Duration::days(i64::from(policy.window_days.max(1)));
    let (lo, hi) = (me.created_at - window, me.created_at + window);
    let common = "AND t.created_at >= $1 AND t.created_at <= $2 AND t.merged_into IS NULL \
         AND t.status IN ('new', 'awaiting_identity', 'assigned', 'in_progress')";
    let mut out = Vec::new();
    if let Some(at) = me.location {
        let cells = incident::cells_around(at);
        let sql = format!(
            "SELECT {PROBE_COLS} FROM tickets t WHERE t.place_cell IN ({}) {common} LIMIT {}",
            placeholders(3, cells.len()),
            CANDIDATE_LIMIT
        );
        let mut params = args![lo, hi];
        params.extend(cells.into_iter().map(Value::from));
        out.push((sql, params));
    }
    if let Some(place) = &me.place {
        let (cond, params) = match &me.kecamatan {
            Some(k) => ("t.place = $3 AND t.kecamatan = $4", args![lo, hi, place, k]),
            None => ("t.place = $3", args![lo, hi, place]),
        };
        let sql = format!(
            "SELECT {PROBE_COLS} FROM tickets t WHERE {cond} {common} LIMIT {CANDIDATE_LIMIT}"
        );
        out.push((sql, params));
    }
    out
}

/// Tickets never to suggest with ticket `id` again: dismissed either way round, and every
/// member of a dismissed ticket's incident. Returns (ticket ids, incident ids).
async fn dismissed<D: Db>(c: &mut D, id: i64) -> Result<(BTreeSet<i64>, BTreeSet<i64>)> {
    let rows = c
        .fetch_all(
            "SELECT t.id, t.incident_id FROM tickets t WHERE t.id IN \
             (SELECT other_id FROM incident_dismissals WHERE ticket_id = $1 \
              UNION SELECT ticket_id FROM incident_dismissals WHERE other_id = $1)",
            args![id],
        )
        .await?;
    let (mut ids, mut incidents) = (BTreeSet::new(), BTreeSet::new());
    for r in rows {
        ids.insert(r.get::<i64>("id")?);
        if let Some(i) = r.get::<Option<i64>>("incident_id")? {
            incidents.insert(i);
        }
    }
    Ok((ids, incidents))
}

async fn reports<D: Db>(c: &mut D, incident_id: i64) -> Result<i64> {
    c.fetch_one_scalar(
        "SELECT COUNT(*) FROM tickets WHERE incident_id = $1 AND merged_into IS NULL",
        args![incident_id],
    )
    .await
}

/// The candidates of ticket `me`, scored, best first, one per incident, dismissed ones
/// left out; only those scoring above zero.
async fn candidates<D: Db>(c: &mut D, policy: &IncidentPolicy, me: &Probe) -> Result<Vec<Scored>> {
    let mut seen = BTreeMap::new();
    for (sql, params) in candidate_sql(me, policy) {
        for row in c.fetch_all(&sql, params).await? {
            let p = probe(&row)?;
            seen.entry(p.id).or_insert(p);
        }
    }
    seen.remove(&me.id);
    if seen.is_empty() {
        return Ok(Vec::new());
    }
    let (gone_ids, gone_incidents) = dismissed(c, me.id).await?;
    // The best member stands for its incident (a lone ticket for itself).
    let mut best: BTreeMap<i64, (Probe, Facts, f64)> = BTreeMap::new();
    for (_, p) in seen {
        if gone_ids.contains(&p.id)
            || p.incident_id.is_some_and(|i| gone_incidents.contains(&i))
            || (p.incident_id.is_some() && p.incident_id == me.incident_id)
        {
            continue;
        }
        let f = facts(me, &p);
        let radius = policy.radius_for(me.category.as_deref().or(p.category.as_deref()));
        let s = incident::score(&f, policy, radius);
        if s <= 0.0 {
            continue;
        }
        let key = p.incident_id.map_or(-p.id, |i| i);
        if best.get(&key).is_none_or(|(_, _, b)| s > *b) {
            best.insert(key, (p, f, s));
        }
    }
    let mut out = Vec::with_capacity(best.len());
    for (_, (p, f, s)) in best {
        let n = match p.incident_id {
            Some(i) => reports(c, i).await?,
            None => 1,
        };
        out.push(Scored { code: p.code, id: p.id, facts: f, score: s, reports: n });
    }
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// After the routing decision of ticket `ticket_id`: index it, and with `auto_join` join
/// the best candidate scoring `auto_join_score` or more. Returns the incident joined.
pub(crate) async fn after_route<D: Db>(
    c: &mut D,
    policy: &IncidentPolicy,
    ticket_id: i64,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    index_ticket(c, ticket_id).await?;
    if !policy.auto_join {
        return Ok(None);
    }
    let Some(me) = load_probe(c, ticket_id).await? else { return Ok(None) };
    if me.incident_id.is_some() {
        return Ok(None);
    }
    let found = candidates(c, policy, &me).await?;
    let Some(best) = found.first() else { return Ok(None) };
    if incident::verdict(best.score, policy) != Verdict::Join {
        return Ok(None);
    }
    let note = format!("score {:.2}", best.score);
    let (me_code, best_code) = (me.code, best.code);
    lock_tickets(c, &[me_code, best_code]).await?;
    let joined = join_ids(c, me.id, best.id, &Actor::System, "auto_joined", &note, now).await?;
    tracing::info!(ticket = %me_code, other = %best_code, score = best.score, "Ticket joined an incident by itself.");
    Ok(joined)
}

/// The codes of a ticket's incident, `code` itself excluded (empty when it has none).
pub(crate) async fn other_members<D: Db>(c: &mut D, code: TicketCode) -> Result<Vec<TicketCode>> {
    let codes: Vec<String> = c
        .fetch_all_scalar(
            "SELECT m.code FROM tickets t JOIN tickets m ON m.incident_id = t.incident_id \
             WHERE t.code = $1 AND m.id <> t.id AND m.merged_into IS NULL ORDER BY m.id",
            args![code.to_string()],
        )
        .await?;
    codes.iter().map(|s| parse(s, "ticket code")).collect()
}

/// Whether another member of ticket `ticket_id`'s incident has notification `key` (the
/// incident's officials heard of it already).
pub(crate) async fn disposition_done<D: Db>(c: &mut D, ticket_id: i64, key: &str) -> Result<bool> {
    let found: Option<i64> = c
        .fetch_optional_scalar(
            "SELECT n.id FROM tickets t JOIN tickets m ON m.incident_id = t.incident_id \
             JOIN notifications n ON n.ticket_id = m.id \
             WHERE t.id = $1 AND m.id <> t.id AND n.key = $2 LIMIT 1",
            args![ticket_id, key],
        )
        .await?;
    Ok(found.is_some())
}

/// For the officials' mail of an incident ticket: "N laporan warga" and the places, or
/// `None` for a ticket that reports alone.
pub(crate) async fn incident_note<D: Db>(c: &mut D, ticket_id: i64) -> Result<Option<String>> {
    let rows = c
        .fetch_all(
            "SELECT m.code, m.place, m.kecamatan, m.lat, m.lon FROM tickets t \
             JOIN tickets m ON m.incident_id = t.incident_id \
             WHERE t.id = $1 AND m.merged_into IS NULL ORDER BY m.id",
            args![ticket_id],
        )
        .await?;
    if rows.len() < 2 {
        return Ok(None);
    }
    let mut places = BTreeSet::new();
    for r in &rows {
        let place: Option<String> = r.get("place")?;
        let kec: Option<String> = r.get("kecamatan")?;
        let at = super::common::location(r.get("lat")?, r.get("lon")?);
        let text = match (place, kec, at) {
            (Some(p), Some(k), _) => format!("{p}, Kec. {k}"),
            (Some(p), None, _) => p,
            (None, _, Some(l)) => format!("{:.5},{:.5}", l.lat, l.lon),
            (None, Some(k), None) => format!("Kec. {k}"),
            (None, None, None) => continue,
        };
        places.insert(text);
    }
    let codes: Vec<String> =
        rows.iter().map(|r| r.get::<String>("code")).collect::<Result<Vec<_>>>()?;
    let mut note = format!("Insiden: {} laporan warga ({}).", rows.len(), codes.join(", "));
    if !places.is_empty() {
        note.push_str(&format!(" Lokasi: {}.", places.into_iter().collect::<Vec<_>>().join("; ")));
    }
    Ok(Some(note))
}

/// Puts ticket `a` into ticket `b`'s incident (made from `b` when it has none), leaving the
/// incident `a` was in. `None` when they already share one. Both rows must be locked.
async fn join_ids<D: Db>(
    c: &mut D,
    a: i64,
    b: i64,
    actor: &Actor,
    how: &str,
    note: &str,
    now: DateTime<Utc>,
) -> Result<Option<i64>> {
    let (Some(pa), Some(pb)) = (load_probe(c, a).await?, load_probe(c, b).await?) else {
        return Err(StoreError::Internal("incident member vanished".into()));
    };
    if pa.incident_id.is_some() && pa.incident_id == pb.incident_id {
        return Ok(None);
    }
    if pa.incident_id.is_some() {
        leave_id(c, &pa, actor, now).await?;
    }
    let target = match pb.incident_id {
        Some(i) => i,
        None => {
            let id: i64 = c
                .fetch_one_scalar(
                    "INSERT INTO incidents (created_at, first_reported_at) VALUES ($1, $2) \
                     RETURNING id",
                    args![now, pb.created_at],
                )
                .await?;
            c.execute("UPDATE tickets SET incident_id = $2 WHERE id = $1", args![b, id]).await?;
            id
        }
    };
    c.execute("UPDATE tickets SET incident_id = $2 WHERE id = $1", args![a, target]).await?;
    // Deadlines run from the first report: each member's become the earliest of them.
    let first: DateTime<Utc> = c
        .fetch_one_scalar(
            "SELECT MIN(created_at) FROM tickets WHERE incident_id = $1 AND merged_into IS NULL",
            args![target],
        )
        .await?;
    c.execute("UPDATE incidents SET first_reported_at = $2 WHERE id = $1", args![target, first])
        .await?;
    let row = c
        .fetch_one(
            "SELECT MIN(first_response_due_at) AS fr, MIN(resolution_due_at) AS res FROM tickets \
             WHERE incident_id = $1 AND merged_into IS NULL",
            args![target],
        )
        .await?;
    let fr: Option<DateTime<Utc>> = row.get("fr")?;
    let res: Option<DateTime<Utc>> = row.get("res")?;
    c.execute(
        "UPDATE tickets SET first_response_due_at = COALESCE($2, first_response_due_at), \
         resolution_due_at = COALESCE($3, resolution_due_at) \
         WHERE incident_id = $1 AND merged_into IS NULL",
        args![target, fr, res],
    )
    .await?;
    let note = format!("incident {target}; {note}");
    let (ca, cb) = (pa.code.to_string(), pb.code.to_string());
    event(c, a, now, actor, EventKind::Incident, Some(&cb), Some(how), Some(&note)).await?;
    event(c, b, now, actor, EventKind::Incident, Some(&ca), Some(how), Some(&note)).await?;
    Ok(Some(target))
}

/// Takes a ticket out of its incident; the last member of an incident of two leaves too.
async fn leave_id<D: Db>(c: &mut D, p: &Probe, actor: &Actor, now: DateTime<Utc>) -> Result<()> {
    let Some(inc) = p.incident_id else {
        return Err(StoreError::Conflict(format!("{} belongs to no incident", p.code)));
    };
    c.execute("UPDATE tickets SET incident_id = NULL WHERE id = $1", args![p.id]).await?;
    let note = format!("incident {inc}");
    event(c, p.id, now, actor, EventKind::Incident, None, Some("left"), Some(&note)).await?;
    let rest: Vec<i64> = c
        .fetch_all_scalar(
            "SELECT id FROM tickets WHERE incident_id = $1 AND merged_into IS NULL",
            args![inc],
        )
        .await?;
    if let [last] = rest.as_slice() {
        c.execute("UPDATE tickets SET incident_id = NULL WHERE id = $1", args![*last]).await?;
        event(c, *last, now, actor, EventKind::Incident, None, Some("left"), Some(&note)).await?;
    }
    Ok(())
}

/// An operator's join, leave or dismissal on ticket `code`.
pub(crate) async fn incident_action<D: Db>(
    c: &mut D,
    code: TicketCode,
    action: IncidentAction,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let other = match &action {
        IncidentAction::Join(o) | IncidentAction::Dismiss(o) => Some(*o),
        IncidentAction::Leave => None,
    };
    if other == Some(code) {
        return Err(StoreError::Invalid("a ticket is not its own duplicate".into()));
    }
    let mut codes = vec![code];
    codes.extend(other);
    lock_tickets(c, &codes).await?;
    let t = require_ticket(c, code, now).await?;
    if let Some(into) = t.summary.merged_into {
        return Err(StoreError::Conflict(format!("{code} is merged into {into}")));
    }
    let me = load_probe(c, t.id).await?.ok_or(StoreError::TicketNotFound(code))?;
    match action {
        IncidentAction::Leave => leave_id(c, &me, &actor, now).await,
        IncidentAction::Join(o) => {
            let ot = require_ticket(c, o, now).await?;
            if let Some(into) = ot.summary.merged_into {
                return Err(StoreError::Conflict(format!("{o} is merged into {into}")));
            }
            join_ids(c, t.id, ot.id, &actor, "joined", "by hand", now).await?;
            Ok(())
        }
        IncidentAction::Dismiss(o) => {
            let ot = require_ticket(c, o, now).await?;
            c.execute(
                "INSERT INTO incident_dismissals (ticket_id, other_id, actor, at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (ticket_id, other_id) DO NOTHING",
                args![t.id, ot.id, actor.to_string(), now],
            )
            .await?;
            let oc = o.to_string();
            event(c, t.id, now, &actor, EventKind::Incident, Some(&oc), Some("dismissed"), None)
                .await
        }
    }
}

/// Fills a ticket view's `incident` and `incident_suggestions` (an open, unmerged ticket's).
pub(crate) async fn fill_view<D: Db>(
    c: &mut D,
    policy: &IncidentPolicy,
    view: &mut TicketView,
    _now: DateTime<Utc>,
) -> Result<()> {
    let id: Option<i64> = c
        .fetch_optional_scalar(
            "SELECT id FROM tickets WHERE code = $1",
            args![view.summary.code.to_string()],
        )
        .await?;
    let Some(me) = (match id {
        Some(id) => load_probe(c, id).await?,
        None => None,
    }) else {
        return Ok(());
    };
    if let Some(i) = me.incident_id {
        view.incident = Some(IncidentRef { id: i, reports: reports(c, i).await? });
    }
    if !view.summary.status.is_open() || view.summary.merged_into.is_some() {
        return Ok(());
    }
    let found = candidates(c, policy, &me).await?;
    view.incident_suggestions = found
        .into_iter()
        .filter(|s| s.score >= policy.suggest_score)
        .take(MAX_SUGGESTIONS)
        .map(|s| IncidentSuggestion {
            code: s.code,
            score: s.score,
            why: incident::explain(&s.code.to_string(), s.reports, &s.facts),
        })
        .collect();
    Ok(())
}

/// The (unmerged) tickets of incident `id`, oldest first; empty when there is none.
pub(crate) async fn incident_tickets<D: Db>(
    c: &mut D,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<TicketSummary>> {
    let rows = c
        .fetch_all(
            super::common::ticket_select!(
                "WHERE t.incident_id = $1 AND t.merged_into IS NULL ORDER BY t.id"
            ),
            args![id],
        )
        .await?;
    rows.iter().map(|r| Ok(super::common::ticket_row(r, now)?.summary)).collect()
}

/// The scored candidates of a ticket, for the bench (`(code, score)`, best first).
pub(crate) async fn match_ticket<D: Db>(
    c: &mut D,
    policy: &IncidentPolicy,
    code: TicketCode,
) -> Result<Vec<(TicketCode, f64)>> {
    let id: Option<i64> = c
        .fetch_optional_scalar("SELECT id FROM tickets WHERE code = $1", args![code.to_string()])
        .await?;
    let Some(me) = (match id {
        Some(id) => load_probe(c, id).await?,
        None => None,
    }) else {
        return Err(StoreError::TicketNotFound(code));
    };
    Ok(candidates(c, policy, &me).await?.into_iter().map(|s| (s.code, s.score)).collect())
}

/// Among the (unmerged) tickets created in `[from, to)`: how many incidents they belong
/// to and how many of them belong to one, for the statistics.
pub(crate) async fn incident_counts<D: Db>(
    c: &mut D,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(i64, i64)> {
    let row = c
        .fetch_one(
            "SELECT COUNT(DISTINCT incident_id) AS incidents, COUNT(*) AS reports FROM tickets \
             WHERE incident_id IS NOT NULL AND merged_into IS NULL \
             AND ($1 IS NULL OR created_at >= $1) AND ($2 IS NULL OR created_at < $2)",
            args![from, to],
        )
        .await?;
    Ok((row.get("incidents")?, row.get("reports")?))
}

/// How many residents reported ticket `code`'s problem: its incident's tickets, or 1.
pub(crate) async fn reported_by<D: Db>(c: &mut D, code: TicketCode) -> Result<i64> {
    let inc: Option<Option<i64>> = c
        .fetch_optional_scalar(
            "SELECT incident_id FROM tickets WHERE code = $1",
            args![code.to_string()],
        )
        .await?;
    match inc.flatten() {
        Some(i) => reports(c, i).await,
        None => Ok(1),
    }
}

/// The `EXPLAIN` of the candidate queries of a ticket (for the bench: index, no scan).
pub(crate) async fn explain_candidates<D: Db>(
    c: &mut D,
    policy: &IncidentPolicy,
    code: TicketCode,
) -> Result<Vec<String>> {
    let id: i64 = c
        .fetch_optional_scalar("SELECT id FROM tickets WHERE code = $1", args![code.to_string()])
        .await?
        .ok_or(StoreError::TicketNotFound(code))?;
    let me = load_probe(c, id).await?.ok_or(StoreError::TicketNotFound(code))?;
    let mut out = Vec::new();
    for (sql, params) in candidate_sql(&me, policy) {
        out.extend(super::common::explain(c, &sql, params).await?);
    }
    Ok(out)
}

impl Store {
    /// Joins, leaves or dismisses (`POST /api/v1/tickets/{code}/incident`).
    pub async fn incident_action(
        &self,
        code: TicketCode,
        action: IncidentAction,
        actor: Actor,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| incident_action(c, code, action, actor, now))
    }

    /// The tickets of incident `id` (`GET /api/v1/tickets?incident=ID`).
    pub async fn incident_tickets(&self, id: i64) -> Result<Vec<TicketSummary>> {
        let now = now();
        read!(self, |c| incident_tickets(c, id, now))
    }

    /// Indexes ticket `code` and returns its candidates with their scores, best first (the
    /// matcher bench; [`Store::ticket`] shows those from `suggest_score`).
    pub async fn incident_candidates(&self, code: TicketCode) -> Result<Vec<(TicketCode, f64)>> {
        let policy = self.inner.opts.incidents.clone();
        read!(self, |c| match_ticket(c, &policy, code))
    }

    /// Recomputes ticket `code`'s place cell and term signature (bulk loads and the bench;
    /// the routing worker does it for every new ticket).
    pub async fn incident_index(&self, code: TicketCode) -> Result<()> {
        let now = now();
        write!(self, |c| async move {
            let t = require_ticket(c, code, now).await?;
            index_ticket(c, t.id).await
        })
    }

    /// The plans of the candidate queries for ticket `code`.
    pub async fn explain_incident_candidates(&self, code: TicketCode) -> Result<Vec<String>> {
        let policy = self.inner.opts.incidents.clone();
        read!(self, |c| explain_candidates(c, &policy, code))
    }

    /// Among the tickets created in `[from, to)`: (incidents, tickets in incidents).
    pub async fn incident_counts(
        &self,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<(i64, i64)> {
        read!(self, |c| incident_counts(c, from, to))
    }

    /// How many residents reported ticket `code`'s problem (1 without an incident).
    pub async fn reported_by(&self, code: TicketCode) -> Result<i64> {
        read!(self, |c| reported_by(c, code))
    }
}

// --- acting once for all: the store's actions on every member of an incident ---

/// Locks ticket `code` and the rest of its incident (in id order) and returns the rest.
async fn lock_members<D: Db>(c: &mut D, code: TicketCode) -> Result<Vec<TicketCode>> {
    let rest = other_members(c, code).await?;
    let mut all = rest.clone();
    all.push(code);
    lock_tickets(c, &all).await?;
    Ok(rest)
}

/// [`super::actions::assign`] on `code` and on every other member not yet with that OPD
/// (where `assigned` is a legal next status).
pub(crate) async fn assign_all<D: Db>(
    c: &mut D,
    code: TicketCode,
    opd: String,
    actor: Actor,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rest = lock_members(c, code).await?;
    super::actions::assign(c, code, opd.clone(), actor.clone(), note.clone(), now).await?;
    for m in rest {
        let t = require_ticket(c, m, now).await?;
        if super::actions::check_assign(m, &t, &opd).is_err() {
            continue;
        }
        super::actions::assign(c, m, opd.clone(), actor.clone(), note.clone(), now).await?;
    }
    Ok(())
}

/// [`super::actions::set_status`] (and the confirmation question when resolved) on `code`
/// and on every other member whose status may become `to`.
pub(crate) async fn set_status_all<D: Db>(
    c: &mut D,
    opts: &crate::StoreOptions,
    code: TicketCode,
    to: Status,
    actor: Actor,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let rest = lock_members(c, code).await?;
    let mut all = vec![code];
    for m in rest {
        let from = require_ticket(c, m, now).await?.summary.status;
        if from != to && from.check_status_action(to, note.as_deref()).is_ok() {
            all.push(m);
        }
    }
    for m in all {
        super::actions::set_status(c, m, to, actor.clone(), note.clone(), now).await?;
        // Resolved: the resident is asked to confirm, in the same transaction.
        if to == Status::Resolved {
            super::actions::ask_confirmation(c, opts, m, now).await?;
        }
    }
    Ok(())
}

/// [`super::actions::reply`] on `code`, then the same answer to every other member's
/// reporter on their own channel (one outbox row each). Returns `code`'s.
pub(crate) async fn reply_all<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<crate::types::Replied> {
    let rest = lock_members(c, code).await?;
    let replied = super::actions::reply(c, code, text.clone(), actor.clone(), now).await?;
    for m in rest {
        super::actions::reply(c, m, text.clone(), actor.clone(), now).await?;
    }
    Ok(replied)
}

/// [`super::actions::relay_reply`] (an official's emailed answer) on `code`, then to every
/// other member's reporter like [`reply_all`], each taken up (`assigned` → `in_progress`).
pub(crate) async fn relay_reply_all<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    origin: String,
    now: DateTime<Utc>,
) -> Result<Option<crate::types::Replied>> {
    let rest = lock_members(c, code).await?;
    let replied =
        super::actions::relay_reply(c, code, text.clone(), actor.clone(), origin, now).await?;
    if replied.is_none() {
        return Ok(None);
    }
    for m in rest {
        super::actions::reply(c, m, text.clone(), actor.clone(), now).await?;
        if require_ticket(c, m, now).await?.summary.status == Status::Assigned {
            super::actions::set_status(c, m, Status::InProgress, actor.clone(), None, now).await?;
        }
    }
    Ok(replied)
}

// --- residents: one resident across channels (issue 20 item 4) ---
//
// Every message from a provider-verified identifier (`aduan_core::profile::verified_keys`)
// records its key for the reporter (`reporter_keys`); reporters sharing a key are linked into
// one `residents` row (`reporters.resident_id`), in the intake transaction
// ([`link_on_intake`]). Typed contacts (web form, Open311) record nothing, so they never
// link automatically; a reporter of the same name in the same desa is only suggested on the
// ticket view. Operators link and unlink by hand ([`resident_action`]; audited, and an
// unlinked reporter is `resident_locked`: never linked automatically again). The routing
// worker reads a linked reporter's name and address from the profile
// ([`linked_identity`]), so an identity answer given once is not asked for again.

/// Puts reporters `ids` (and everyone already linked to any of them) into one resident.
/// Returns the resident, and whether anything changed.
async fn link_reporters<D: Db>(
    c: &mut D,
    ids: &[i64],
    actor: &Actor,
    action: &str,
    now: DateTime<Utc>,
) -> Result<(i64, bool)> {
    let sql = format!(
        "SELECT id, resident_id FROM reporters WHERE id IN ({}) ORDER BY id",
        placeholders(1, ids.len())
    );
    let rows = c.fetch_all(&sql, ids.iter().map(|i| Value::from(*i)).collect()).await?;
    let mut residents = BTreeSet::new();
    let mut bare = Vec::new();
    for r in &rows {
        match r.get::<Option<i64>>("resident_id")? {
            Some(x) => {
                residents.insert(x);
            }
            None => bare.push(r.get::<i64>("id")?),
        }
    }
    let target = match residents.first() {
        Some(t) => *t,
        None => {
            c.fetch_one_scalar(
                "INSERT INTO residents (created_at) VALUES ($1) RETURNING id",
                args![now],
            )
            .await?
        }
    };
    let changed = !bare.is_empty() || residents.len() > 1;
    for id in bare {
        c.execute(
            "UPDATE reporters SET resident_id = $2, resident_locked = $3 WHERE id = $1",
            args![id, target, false],
        )
        .await?;
    }
    for other in residents.iter().filter(|r| **r != target) {
        c.execute(
            "UPDATE reporters SET resident_id = $2 WHERE resident_id = $1",
            args![*other, target],
        )
        .await?;
    }
    if changed {
        let note = format!("{} reporter(s)", ids.len());
        audit(c, actor, action, Some(&format!("resident {target}")), Some(&note), now).await?;
    }
    Ok((target, changed))
}

/// Intake: records the sender's verified keys for its reporter and links the reporter with
/// every other (not locked) reporter holding one of them.
pub(crate) async fn link_on_intake<D: Db>(
    c: &mut D,
    reporter_id: Option<i64>,
    msg: &aduan_core::InboundMessage,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(me) = reporter_id else { return Ok(()) };
    if msg.thread.automated {
        return Ok(());
    }
    let keys = aduan_core::profile::verified_keys(msg.channel, &msg.sender);
    if keys.is_empty() {
        return Ok(());
    }
    for k in &keys {
        c.execute(
            "INSERT INTO reporter_keys (key, reporter_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key, reporter_id) DO NOTHING",
            args![k, me, now],
        )
        .await?;
    }
    let locked: bool = c
        .fetch_one_scalar("SELECT resident_locked FROM reporters WHERE id = $1", args![me])
        .await?;
    if locked {
        return Ok(());
    }
    let sql = format!(
        "SELECT DISTINCT k.reporter_id FROM reporter_keys k JOIN reporters r ON r.id = k.reporter_id \
         WHERE k.key IN ({}) AND k.reporter_id <> $1 AND r.resident_locked = $2",
        placeholders(3, keys.len())
    );
    let mut params = args![me, false];
    params.extend(keys.iter().map(Value::from));
    let others: Vec<i64> = c.fetch_all_scalar(&sql, params).await?;
    if others.is_empty() {
        return Ok(());
    }
    let mut ids = others;
    ids.push(me);
    let (resident, changed) =
        link_reporters(c, &ids, &Actor::System, "resident_linked_auto", now).await?;
    if changed {
        tracing::info!(resident, reporters = ids.len(), "Reporters linked into one resident.");
    }
    Ok(())
}

/// A linked reporter's name, address and confidentiality from the rest of the profile (the
/// newest known of each): `(None, None, false)` for a reporter linked to nobody.
pub(crate) async fn linked_identity<D: Db>(
    c: &mut D,
    reporter_id: i64,
) -> Result<(Option<String>, Option<String>, bool)> {
    let rows = c
        .fetch_all(
            "SELECT o.name, o.address, o.confidential FROM reporters r \
             JOIN reporters o ON o.resident_id = r.resident_id \
             WHERE r.id = $1 AND o.id <> r.id ORDER BY o.id DESC LIMIT 20",
            args![reporter_id],
        )
        .await?;
    let (mut name, mut address, mut confidential) = (None, None, false);
    for r in rows {
        name = name.or(r.get::<Option<String>>("name")?);
        address = address.or(r.get::<Option<String>>("address")?);
        confidential |= r.get::<bool>("confidential")?;
    }
    Ok((name, address, confidential))
}

fn resident_ticket(row: &Row) -> Result<crate::types::ResidentTicket> {
    Ok(crate::types::ResidentTicket {
        code: parse(&row.get::<String>("code")?, "ticket code")?,
        channel: parse(&row.get::<String>("channel")?, "channel")?,
        status: parse(&row.get::<String>("status")?, "status")?,
        created_at: row.get("created_at")?,
    })
}

/// Fills a ticket view's `resident`: the other tickets of the linked reporters, and the
/// tickets of same-named reporters in the same desa (suggested links).
pub(crate) async fn fill_resident<D: Db>(c: &mut D, view: &mut TicketView) -> Result<()> {
    let row = c
        .fetch_optional(
            "SELECT t.id, t.reporter_id, r.resident_id, r.name, t.place, t.kecamatan \
             FROM tickets t JOIN reporters r ON r.id = t.reporter_id WHERE t.code = $1",
            args![view.summary.code.to_string()],
        )
        .await?;
    let Some(row) = row else { return Ok(()) };
    let (ticket_id, reporter_id): (i64, i64) = (row.get("id")?, row.get("reporter_id")?);
    let resident: Option<i64> = row.get("resident_id")?;
    let mut tickets = Vec::new();
    if let Some(res) = resident {
        let rows = c
            .fetch_all(
                "SELECT t.code, t.channel, t.status, t.created_at FROM reporters r \
                 JOIN tickets t ON t.reporter_id = r.id \
                 WHERE r.resident_id = $1 AND t.id <> $2 ORDER BY t.id DESC LIMIT 50",
                args![res, ticket_id],
            )
            .await?;
        tickets = rows.iter().map(resident_ticket).collect::<Result<_>>()?;
    }
    let mut suggested = Vec::new();
    let (name, place): (Option<String>, Option<String>) = (row.get("name")?, row.get("place")?);
    if let (Some(name), Some(place)) = (name, place) {
        let kecamatan: Option<String> = row.get("kecamatan")?;
        let mut params = args![name.to_lowercase(), reporter_id, resident.unwrap_or(-1), &place];
        let kec = match &kecamatan {
            Some(k) => {
                params.push(Value::from(k));
                "t.kecamatan = $5"
            }
            None => "t.kecamatan IS NULL",
        };
        let sql = format!(
            "SELECT t.code, t.channel, t.status, t.created_at FROM tickets t \
             JOIN reporters r ON r.id = t.reporter_id WHERE t.place = $4 AND {kec} \
             AND LOWER(r.name) = $1 AND t.reporter_id <> $2 \
             AND (r.resident_id IS NULL OR r.resident_id <> $3) \
             ORDER BY t.created_at DESC LIMIT 5"
        );
        let rows = c.fetch_all(&sql, params).await?;
        suggested = rows.iter().map(resident_ticket).collect::<Result<_>>()?;
    }
    view.resident = Some(crate::types::ResidentView { id: resident, tickets, suggested });
    Ok(())
}

/// An operator's link or unlink of ticket `code`'s reporter.
pub(crate) async fn resident_action<D: Db>(
    c: &mut D,
    code: TicketCode,
    action: crate::types::ResidentAction,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    use crate::types::ResidentAction;
    let mut codes = vec![code];
    if let ResidentAction::Link(o) = &action {
        if *o == code {
            return Err(StoreError::Invalid("a ticket is linked to itself already".into()));
        }
        codes.push(*o);
    }
    lock_tickets(c, &codes).await?;
    let t = require_ticket(c, code, now).await?;
    let anonymous = |c: TicketCode| StoreError::Invalid(format!("{c} has no reporter to link"));
    let me = t.reporter_id.ok_or_else(|| anonymous(code))?;
    match action {
        ResidentAction::Link(o) => {
            let other = require_ticket(c, o, now).await?.reporter_id.ok_or_else(|| anonymous(o))?;
            if other == me {
                return Ok(());
            }
            let (res, _) = link_reporters(c, &[me, other], &actor, "resident_linked", now).await?;
            let to = format!("resident {res}");
            let oc = o.to_string();
            event(c, t.id, now, &actor, EventKind::ReporterUpdated, Some(&oc), Some(&to), None)
                .await
        }
        ResidentAction::Unlink => {
            let res: Option<i64> = c
                .fetch_one_scalar("SELECT resident_id FROM reporters WHERE id = $1", args![me])
                .await?;
            let Some(res) = res else {
                return Err(StoreError::Conflict(format!("{code}'s reporter is linked to nobody")));
            };
            c.execute(
                "UPDATE reporters SET resident_id = NULL, resident_locked = $2 WHERE id = $1",
                args![me, true],
            )
            .await?;
            let target = format!("resident {res}");
            audit(c, &actor, "resident_unlinked", Some(&target), Some("1 reporter(s)"), now)
                .await?;
            event(c, t.id, now, &actor, EventKind::ReporterUpdated, None, Some("unlinked"), None)
                .await
        }
    }
}

impl Store {
    /// Links or unlinks ticket `code`'s reporter (`POST /api/v1/tickets/{code}/resident`).
    pub async fn resident_action(
        &self,
        code: TicketCode,
        action: crate::types::ResidentAction,
        actor: Actor,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| resident_action(c, code, action, actor, now))
    }
}
