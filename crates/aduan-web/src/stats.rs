//! Open data and the dashboard: `GET /api/v1/stats` (JSON or `?format=csv`) counts tickets
//! and deadline compliance by OPD, channel, category, kecamatan or day — anonymous by
//! construction (counts only), public and rate-limited like the tracking page. `/dashboard`
//! draws the same numbers as server-side SVG (no JavaScript), numbers beside the pictures.
//! `view=satisfaction` gives the residents' confirmations and ratings; `view=routing` the
//! routing quality per OPD (share routed automatically, share an operator re-disposed
//! afterwards, median hours to the first disposition; `Store::routing_quality`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use aduan_core::Channel;
use aduan_store::{SatisfactionRow, StatsGroup, StatsQuery, StatsRow};
use askama::Template;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::pages::{Nav, PageUser, error_page, render};

/// `from`/`to`: RFC 3339, or an office day `YYYY-MM-DD` (its midnight; `to` is exclusive).
fn instant(field: &str, v: &str) -> Result<DateTime<Utc>, ApiError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| ApiError::field(field, "must be RFC 3339 or YYYY-MM-DD"))?;
    let off = aduan_core::time::display_offset();
    off.from_local_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| ApiError::field(field, "is not a valid day"))
}

fn query(q: &HashMap<String, String>) -> Result<StatsQuery, ApiError> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let group_by = match get("group_by") {
        Some(g) => g.parse::<StatsGroup>().map_err(|e| ApiError::field("group_by", e))?,
        None => StatsGroup::Opd,
    };
    let from = get("from").map(|v| instant("from", v)).transpose()?;
    let to = get("to").map(|v| instant("to", v)).transpose()?;
    Ok(StatsQuery {
        from,
        to,
        group_by,
        offset_secs: aduan_core::time::display_offset().local_minus_utc(),
    })
}

/// One CSV field (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// `?format=`: `json` (or absent) → false, `csv` → true, anything else a 422 on `format`.
fn wants_csv(q: &HashMap<String, String>) -> Result<bool, ApiError> {
    match q.get("format").map(String::as_str) {
        None | Some("json" | "") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(ApiError::field("format", "must be json or csv")),
    }
}

/// A CSV download named `file`.
fn csv_response(file: &str, body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}\"")),
        ],
        body,
    )
        .into_response()
}

/// One view of `GET /api/v1/stats`: the rate limit, `?format=` and the query checked in this
/// order, the rows loaded, then the CSV download `csv` makes, or the JSON object `json` makes
/// with the period asked (`from`, `to`) added; any error as the API answers it.
async fn view<T, E, F>(
    allowed: Result<(), ApiError>,
    q: &HashMap<String, String>,
    load: impl FnOnce(StatsQuery) -> F,
    csv: impl FnOnce(&StatsQuery, T) -> Response,
    json: impl FnOnce(&StatsQuery, T) -> serde_json::Value,
) -> Response
where
    F: Future<Output = Result<T, E>>,
    ApiError: From<E>,
{
    let run = async {
        allowed?;
        let csv = wants_csv(q)?;
        let sq = query(q)?;
        let rows = load(sq.clone()).await?;
        Ok::<_, ApiError>((csv, sq, rows))
    };
    match run.await {
        Ok((true, sq, rows)) => csv(&sq, rows),
        Ok((false, sq, rows)) => {
            let mut body = json(&sq, rows);
            body["from"] = json!(sq.from.as_ref().map(aduan_core::time::format_rfc3339));
            body["to"] = json!(sq.to.as_ref().map(aduan_core::time::format_rfc3339));
            axum::Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// A share as a whole percentage, `—` when there is none.
fn percent(v: Option<f64>) -> String {
    v.map(|c| format!("{:.0}%", c * 100.0)).unwrap_or_else(|| "—".into())
}

pub(crate) fn to_csv(group_by: StatsGroup, rows: &[StatsRow]) -> String {
    let mut out = format!(
        "{},total,open,resolved,rejected,overdue,responded_on_time,responded_late,compliance,closed\r\n",
        group_by.as_str()
    );
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(r.key.as_deref().unwrap_or("")),
            r.total,
            r.open,
            r.resolved,
            r.rejected,
            r.overdue,
            r.responded_on_time,
            r.responded_late,
            r.compliance.map(|c| format!("{c:.4}")).unwrap_or_default(),
            r.closed
        );
    }
    out
}

pub(crate) async fn api_stats(State(state): State<AppState>, req: Request) -> Response {
    let allowed = crate::public::limited(&state, req.extensions());
    let q: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    drop(req);
    let state = &state;
    match q.get("view").map(|v| v.trim()) {
        None | Some("" | "counts") => {
            view(
                allowed,
                &q,
                |sq| async move {
                    let rows = state.store.stats(sq.clone()).await?;
                    let incidents = state.store.incident_counts(sq.from, sq.to).await?;
                    Ok::<_, ApiError>((rows, incidents))
                },
                |sq, (rows, _)| {
                    csv_response(
                        match sq.group_by {
                            StatsGroup::Opd => "aduan-opd.csv",
                            StatsGroup::Channel => "aduan-channel.csv",
                            StatsGroup::Category => "aduan-category.csv",
                            StatsGroup::Kecamatan => "aduan-kecamatan.csv",
                            StatsGroup::Day => "aduan-day.csv",
                        },
                        to_csv(sq.group_by, &rows),
                    )
                },
                |sq, (rows, (incidents, incident_reports))| {
                    // Issue 20: reports (tickets) and problems counted apart. `problems`
                    // counts an incident once and every ticket outside one.
                    let reports = rows.iter().map(|r| r.total).sum::<i64>();
                    json!({
                        "group_by": sq.group_by,
                        "rows": rows,
                        "incidents": incidents,
                        "incident_reports": incident_reports,
                        "problems": reports - incident_reports + incidents,
                    })
                },
            )
            .await
        }
        // The residents' confirmations and ratings, JSON or CSV like the counts.
        Some("satisfaction") => {
            view(
                allowed,
                &q,
                |sq| state.store.satisfaction(sq),
                |sq, rows| csv_response("aduan-kepuasan.csv", satisfaction_csv(sq.group_by, &rows)),
                |sq, rows| {
                    json!({
                        "view": "satisfaction",
                        "group_by": sq.group_by,
                        "min_ratings": aduan_store::MIN_RATINGS,
                        "rows": rows,
                    })
                },
            )
            .await
        }
        // Per OPD and overall (`"opd": null`, first), the share routed automatically, the
        // share re-disposed by a person afterwards, the median hours to the first
        // disposition, over the tickets created in `from..to`; JSON or CSV.
        Some("routing") => {
            view(
                allowed,
                &q,
                |sq| state.store.routing_quality(sq.from, sq.to),
                |_, rows| csv_response("aduan-routing.csv", routing_csv(&rows)),
                |_, rows| {
                    json!({
                        "view": "routing",
                        "rows": rows,
                    })
                },
            )
            .await
        }
        Some(_) => {
            ApiError::field("view", "must be counts, satisfaction or routing").into_response()
        }
    }
}

// ---- SVG charts ----

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const PALETTE: [&str; 9] = [
    "#1d4ed8", "#15803d", "#b45309", "#7c3aed", "#be123c", "#0e7490", "#4d7c0f", "#a21caf",
    "#525252",
];

/// Horizontal bars: one row per label, one bar per series (grouped), values at the end.
pub(crate) fn hbars(
    title: &str,
    labels: &[String],
    series: &[(&str, Vec<f64>)],
    pct: bool,
) -> String {
    let row_h = 14 * series.len().max(1) + 8;
    let (left, width) = (140.0, 300.0);
    let h = 30 + row_h * labels.len().max(1) + 20;
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(if pct { 1.0 } else { 0.0 }, f64::max)
        .max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 520 {h}\" width=\"520\" height=\"{h}\"><title>{}</title>",
        esc(title)
    );
    let _ = write!(s, "<text x=\"0\" y=\"16\" font-weight=\"bold\">{}</text>", esc(title));
    if labels.is_empty() {
        s.push_str("<text x=\"0\" y=\"40\">Belum ada data.</text>");
    }
    for (i, label) in labels.iter().enumerate() {
        let y0 = 30 + i * row_h;
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>",
            y0 + 12,
            esc(&label.chars().take(20).collect::<String>())
        );
        for (j, (_, values)) in series.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(0.0);
            let w = (v / max * width).max(0.0);
            let y = y0 + j * 14;
            let shown = if pct { format!("{:.0}%", v * 100.0) } else { format!("{v}") };
            let _ = write!(
                s,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"12\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{shown}</text>",
                PALETTE[j % PALETTE.len()],
                left + w + 4.0,
                y + 10
            );
        }
    }
    if series.len() > 1 && !labels.is_empty() {
        let y = h - 6;
        for (j, (name, _)) in series.iter().enumerate() {
            let x = j * 120;
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\" font-size=\"11\">{}</text>",
                y - 9,
                PALETTE[j % PALETTE.len()],
                x + 14,
                esc(name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// Stacked columns: one per day, one colour per channel.
pub(crate) fn day_columns(
    title: &str,
    days: &[String],
    by_channel: &[(Channel, Vec<i64>)],
) -> String {
    let (top, plot_h, left) = (30.0, 160.0, 30.0);
    let n = days.len().max(1);
    let col_w = (480.0 / n as f64).min(24.0);
    let totals: Vec<i64> =
        (0..days.len()).map(|i| by_channel.iter().map(|(_, v)| v[i]).sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1) as f64;
    let legend_rows = by_channel.len().div_ceil(4);
    let h = top + plot_h + 30.0 + 16.0 * legend_rows as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" viewBox=\"0 0 520 {h}\" width=\"520\" height=\"{h}\"><title>{}</title><text x=\"0\" y=\"16\" font-weight=\"bold\">{}</text>",
        esc(title),
        esc(title)
    );
    if days.is_empty() {
        s.push_str("<text x=\"0\" y=\"40\">Belum ada data.</text>");
    }
    let _ = write!(s, "<text x=\"0\" y=\"{}\" font-size=\"10\">{max}</text>", top + 8.0);
    for (i, day) in days.iter().enumerate() {
        let x = left + i as f64 * col_w;
        let mut y = top + plot_h;
        for (j, (_, values)) in by_channel.iter().enumerate() {
            let hgt = values[i] as f64 / max * plot_h;
            if hgt > 0.0 {
                y -= hgt;
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{hgt:.1}\" fill=\"{}\"><title>{} {}: {}</title></rect>",
                    col_w - 2.0,
                    PALETTE[j % PALETTE.len()],
                    esc(day),
                    by_channel[j].0.as_str(),
                    values[i]
                );
            }
        }
        if i == 0 || i + 1 == days.len() {
            let _ = write!(
                s,
                "<text x=\"{x:.1}\" y=\"{}\" font-size=\"10\">{}</text>",
                top + plot_h + 12.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    for (j, (ch, _)) in by_channel.iter().enumerate() {
        let x = (j % 4) as f64 * 125.0;
        let y = top + plot_h + 30.0 + 16.0 * (j / 4) as f64;
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{y}\" font-size=\"11\">{}</text>",
            y - 9.0,
            PALETTE[j % PALETTE.len()],
            x + 14.0,
            ch.as_str()
        );
    }
    s.push_str("</svg>");
    s
}

// ---- The dashboard page ----

pub(crate) struct Chart {
    svg: String,
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    nav: Option<Nav>,
    charts: Vec<Chart>,
}

fn key(r: &StatsRow, none: &str) -> String {
    r.key.clone().unwrap_or_else(|| none.to_owned())
}

fn top(mut rows: Vec<StatsRow>, n: usize) -> Vec<StatsRow> {
    rows.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
    rows.truncate(n);
    rows
}

pub(crate) async fn dashboard(State(state): State<AppState>, PageUser(s): PageUser) -> Response {
    match charts(&state).await {
        Ok(charts) => render(StatusCode::OK, &DashboardPage { nav: Nav::of(&s), charts }),
        Err(e) => error_page(Nav::of(&s), &e, None),
    }
}

async fn charts(state: &AppState) -> Result<Vec<Chart>, ApiError> {
    let offset = aduan_core::time::display_offset().local_minus_utc();
    let stats = |g| StatsQuery { from: None, to: None, group_by: g, offset_secs: offset };
    let since = Utc::now() - chrono::Duration::days(30);
    let mut charts = Vec::new();

    // Tickets per day by channel, the last 30 days.
    let per_day = state.store.per_day_by_channel(since, offset).await?;
    let days: Vec<String> = {
        let mut d: Vec<String> = per_day.iter().map(|r| r.day.clone()).collect();
        d.dedup();
        d
    };
    let mut by_ch: BTreeMap<&'static str, (Channel, Vec<i64>)> = BTreeMap::new();
    for r in &per_day {
        let i = days.iter().position(|d| d == &r.day).unwrap_or(0);
        by_ch.entry(r.channel.as_str()).or_insert_with(|| (r.channel, vec![0; days.len()])).1[i] +=
            r.count;
    }
    let series: Vec<(Channel, Vec<i64>)> = by_ch.into_values().collect();
    charts.push(Chart {
        svg: day_columns("Aduan per hari menurut kanal (30 hari)", &days, &series),
        headers: vec!["Hari", "Kanal", "Aduan"],
        rows: per_day
            .iter()
            .map(|r| vec![r.day.clone(), r.channel.as_str().into(), r.count.to_string()])
            .collect(),
    });

    let by_opd = state.store.stats(stats(StatsGroup::Opd)).await?;
    let labels: Vec<String> = by_opd.iter().map(|r| key(r, "(belum)")).collect();
    charts.push(Chart {
        svg: hbars(
            "Kepatuhan tenggat per OPD",
            &labels,
            &[("tepat waktu", by_opd.iter().map(|r| r.compliance.unwrap_or(0.0)).collect())],
            true,
        ),
        headers: vec!["OPD", "Tepat waktu", "Terlambat", "Kepatuhan"],
        rows: by_opd
            .iter()
            .map(|r| {
                vec![
                    key(r, "(belum)"),
                    r.responded_on_time.to_string(),
                    r.responded_late.to_string(),
                    percent(r.compliance),
                ]
            })
            .collect(),
    });
    charts.push(Chart {
        svg: hbars(
            "Terbuka dan terlambat per OPD",
            &labels,
            &[
                ("terbuka", by_opd.iter().map(|r| r.open as f64).collect()),
                ("terlambat", by_opd.iter().map(|r| r.overdue as f64).collect()),
            ],
            false,
        ),
        headers: vec!["OPD", "Terbuka", "Terlambat", "Jumlah"],
        rows: by_opd
            .iter()
            .map(|r| {
                vec![
                    key(r, "(belum)"),
                    r.open.to_string(),
                    r.overdue.to_string(),
                    r.total.to_string(),
                ]
            })
            .collect(),
    });

    for (group, title, head, none) in [
        (StatsGroup::Category, "Kategori teratas", "Kategori", "(tanpa kategori)"),
        (StatsGroup::Kecamatan, "Aduan per kecamatan", "Kecamatan", "(belum tercatat)"),
    ] {
        let rows = top(state.store.stats(stats(group)).await?, 10);
        let labels: Vec<String> = rows.iter().map(|r| key(r, none)).collect();
        charts.push(Chart {
            svg: hbars(
                title,
                &labels,
                &[("aduan", rows.iter().map(|r| r.total as f64).collect())],
                false,
            ),
            headers: vec![head, "Aduan", "Terbuka"],
            rows: rows
                .iter()
                .map(|r| vec![key(r, none), r.total.to_string(), r.open.to_string()])
                .collect(),
        });
    }
    charts.extend(satisfaction_charts(state, offset).await?);
    charts.push(routing_chart(state).await?);
    Ok(charts)
}

// --- confirm: satisfaction (issue 17 item 5) ---

fn share(v: Option<f64>) -> String {
    v.map(|c| format!("{c:.4}")).unwrap_or_default()
}

fn hours(v: Option<f64>) -> String {
    v.map(|h| format!("{h:.1}")).unwrap_or_default()
}

/// The satisfaction rows as CSV (RFC 4180), one group per line.
pub(crate) fn satisfaction_csv(group_by: StatsGroup, rows: &[SatisfactionRow]) -> String {
    let mut out = format!(
        "{},asked,confirmed,reopened,expired,pending,confirmed_share,reopened_share,ratings,\
         mean_rating,responded,response_p50_hours,response_p90_hours,response_le_1h,\
         response_le_24h,response_le_3d,response_gt_3d\r\n",
        group_by.as_str()
    );
    for r in rows {
        let b = r.response_buckets;
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\r\n",
            csv_field(r.key.as_deref().unwrap_or("")),
            r.asked,
            r.confirmed,
            r.reopened,
            r.expired,
            r.pending,
            share(r.confirmed_share),
            share(r.reopened_share),
            r.ratings,
            r.mean_rating.map(|m| format!("{m:.2}")).unwrap_or_default(),
            r.responded,
            hours(r.response_p50_hours),
            hours(r.response_p90_hours),
            b[0],
            b[1],
            b[2],
            b[3]
        );
    }
    out
}

/// The dashboard's satisfaction charts: per OPD the shares confirmed and reopened (bars and
/// a table with the mean rating), and the first-response time buckets of all tickets.
async fn satisfaction_charts(state: &AppState, offset: i32) -> Result<Vec<Chart>, ApiError> {
    let q = StatsQuery { from: None, to: None, group_by: StatsGroup::Opd, offset_secs: offset };
    let rows = state.store.satisfaction(q).await?;
    let with_asked: Vec<&SatisfactionRow> = rows.iter().filter(|r| r.asked > 0).collect();
    let labels: Vec<String> =
        with_asked.iter().map(|r| r.key.clone().unwrap_or_else(|| "(belum)".into())).collect();
    let mut charts = vec![Chart {
        svg: hbars(
            "Konfirmasi warga per OPD",
            &labels,
            &[
                (
                    "sudah beres",
                    with_asked.iter().map(|r| r.confirmed_share.unwrap_or(0.0)).collect(),
                ),
                (
                    "dibuka lagi",
                    with_asked.iter().map(|r| r.reopened_share.unwrap_or(0.0)).collect(),
                ),
            ],
            true,
        ),
        headers: vec![
            "OPD",
            "Ditanya",
            "Sudah beres",
            "Dibuka lagi",
            "Tanpa jawaban",
            "Nilai rata-rata",
        ],
        rows: with_asked
            .iter()
            .zip(&labels)
            .map(|(r, l)| {
                vec![
                    l.clone(),
                    r.asked.to_string(),
                    percent(r.confirmed_share),
                    percent(r.reopened_share),
                    r.expired.to_string(),
                    r.mean_rating.map(|m| format!("{m:.1}")).unwrap_or_else(|| "—".into()),
                ]
            })
            .collect(),
    }];
    let mut buckets = [0i64; 4];
    for r in &rows {
        for (b, n) in buckets.iter_mut().zip(r.response_buckets) {
            *b += n;
        }
    }
    let names = ["≤ 1 jam", "1–24 jam", "1–3 hari", "> 3 hari"];
    let labels: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    charts.push(Chart {
        svg: hbars(
            "Waktu tanggapan pertama",
            &labels,
            &[("aduan", buckets.iter().map(|n| *n as f64).collect())],
            false,
        ),
        headers: vec!["Waktu tanggapan", "Aduan"],
        rows: names
            .iter()
            .zip(buckets)
            .map(|(n, b)| vec![(*n).to_owned(), b.to_string()])
            .collect(),
    });
    Ok(charts)
}

// --- rules: routing quality (issue 18 item 6) ---

/// The routing-quality rows as CSV (RFC 4180): the overall row first (empty `opd`).
pub(crate) fn routing_csv(rows: &[aduan_store::RoutingQualityRow]) -> String {
    let mut out = String::from(
        "opd,tickets,disposed,auto_routed,redisposed,auto_share,redisposed_share,\
         median_disposition_hours\r\n",
    );
    for r in rows {
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{}\r\n",
            csv_field(r.opd.as_deref().unwrap_or("")),
            r.tickets,
            r.disposed,
            r.auto_routed,
            r.redisposed,
            share(r.auto_share),
            share(r.redisposed_share),
            hours(r.median_disposition_hours),
        );
    }
    out
}

/// The dashboard's routing quality: per OPD (and overall, first) the shares routed
/// automatically and re-disposed afterwards, with the median time to disposition.
async fn routing_chart(state: &AppState) -> Result<Chart, ApiError> {
    let rows = state.store.routing_quality(None, None).await?;
    let labels: Vec<String> =
        rows.iter().map(|r| r.opd.clone().unwrap_or_else(|| "Semua".into())).collect();
    Ok(Chart {
        svg: hbars(
            "Ketepatan disposisi otomatis per OPD",
            &labels,
            &[
                ("otomatis", rows.iter().map(|r| r.auto_share.unwrap_or(0.0)).collect()),
                (
                    "didisposisi ulang",
                    rows.iter().map(|r| r.redisposed_share.unwrap_or(0.0)).collect(),
                ),
            ],
            true,
        ),
        headers: vec![
            "OPD",
            "Aduan",
            "Didisposisi",
            "Otomatis",
            "Didisposisi ulang",
            "Median sampai disposisi",
        ],
        rows: rows
            .iter()
            .zip(&labels)
            .map(|(r, l)| {
                vec![
                    l.clone(),
                    r.tickets.to_string(),
                    r.disposed.to_string(),
                    format!("{} ({})", r.auto_routed, percent(r.auto_share)),
                    format!("{} ({})", r.redisposed, percent(r.redisposed_share)),
                    r.median_disposition_hours
                        .map(|h| format!("{h:.1} jam"))
                        .unwrap_or_else(|| "—".into()),
                ]
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: Option<&str>, total: i64) -> StatsRow {
        StatsRow {
            key: key.map(str::to_owned),
            total,
            open: 1,
            resolved: 0,
            rejected: 0,
            overdue: 0,
            responded_on_time: 1,
            responded_late: 1,
            compliance: Some(0.5),
            closed: 2,
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let csv = to_csv(StatsGroup::Category, &[row(Some("jalan, \"rusak\""), 3), row(None, 1)]);
        expect_test::expect![[r#"
            category,total,open,resolved,rejected,overdue,responded_on_time,responded_late,compliance,closed
            "jalan, ""rusak""",3,1,0,0,0,1,1,0.5000,2
            ,1,1,0,0,0,1,1,0.5000,2
        "#]]
        .assert_eq(&csv.replace("\r\n", "\n"));
    }

    #[test]
    fn charts_escape_labels() {
        let svg = hbars("<t>", &["<script>".into()], &[("a\"b", vec![2.0])], false);
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let svg = day_columns("x", &["2026-11-29".into()], &[(Channel::Web, vec![3])]);
        assert!(svg.contains("web") && svg.contains("11-29"));
    }

    #[test]
    fn days_are_office_midnights() {
        let t = instant("from", "2026-11-29").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-28T17:00:00+00:00");
        assert!(instant("from", "kemarin").is_err());
    }
}
