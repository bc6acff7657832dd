//! The inbox-list phase of `cargo xtask bench`: the ticket list at `--list-tickets` tickets
//! (1,000,000 by default, 0 skips it) on SQLite and on PostgreSQL; target p99 ≤ 20 ms.
//!
//! # Method
//!
//! 1. A fresh SQLite database (in the bench's run directory) and a fresh PostgreSQL
//!    database are created and migrated by `aduan-store` itself, so they carry exactly the
//!    schema and indexes of the migrations. PostgreSQL is a private cluster started like
//!    `cargo xtask test` does (`pg.rs`: Debian's server, a temp dir, loopback, `fsync=off`,
//!    which changes nothing for reads), or the server of `--pg-url` (a database named
//!    `aduan_listbench_<pid>` is created there and dropped afterwards).
//! 2. The same generator (a fixed seed) fills both: residents (one per three tickets, each
//!    with a phone identity), tickets spread over twelve months of `created_at` (ids in time
//!    order, as intake makes them), the channels in a plausible mix, the categories and
//!    OPDs of `config/opd.toml` (kecamatan offices for a third of the tickets), statuses by
//!    age (recent ones new, assigned or in progress; old ones mostly resolved, a backlog of
//!    about 7% still open and overdue), deadlines, first responses, pauses, merges, one
//!    inbound message per ticket, and the notifications a running deadline watcher would
//!    have queued (dispositions and escalations). Loading is fast and not measured against
//!    a target: the secondary indexes are dropped, the rows go in one transaction (SQLite)
//!    or by `COPY` (PostgreSQL), the indexes are created again from their own definitions,
//!    then PostgreSQL is `VACUUM ANALYZE`d (what autovacuum does to a settled table). The
//!    SQLite database gets no `ANALYZE`: the daemon never runs it, so the planner works
//!    without statistics as it will in production.
//! 3. The store is opened as the daemon opens it, and the query mixes run through
//!    `Store::tickets` — the function behind the inbox page and `GET /api/v1/tickets`, with
//!    its reader pool (SQLite) or connection pool (PostgreSQL) — one query at a time, 50 per
//!    page, `--list-queries` queries per mix (300 by default) after 20 unmeasured ones:
//!    first page unfiltered; by status; by OPD; by channel; by category; overdue; search by
//!    ticket code; deep pages (a cursor anywhere in the table, with and without a filter);
//!    an official's list (own OPD, alone or with a status or overdue); text search with
//!    rare words (a street name alone, with "jalan", with an official's OPD; a resident's
//!    phone number) and with common words ("lampu", "jalan rusak", "lampu mati" in an OPD,
//!    "sampah" in progress). The generator writes complaints from twelve templates with
//!    one of 2,000 street names in them, so "lampu" is in one ticket in six and a street
//!    name in about one in four thousand. Each search mix is also held to the 20 ms target
//!    on its own.
//! 4. Latency is the wall time of the `Store::tickets` call; percentiles are nearest-rank
//!    per mix and over all mixes together; PASS when the overall p99 of an engine is
//!    ≤ 20 ms. The plan each mix gets (`Store::explain_tickets`) and the plans of the
//!    routing worker's and deadline watcher's scans (`Store::explain_worker_scans`) are
//!    printed, and those scans are timed too (`undisposed`, `deadline_scan`). The deadline
//!    watcher's query (`deadline_scan(1000)`, what one `watch_once` batch reads) has its
//!    own target, p99 ≤ 50 ms: the generator writes `alert_at` as a watcher that keeps up
//!    would have (warnings and escalations sent, the next point ahead).
//! 5. Each search mix also prints p50/p99/max per query shape (`i % variants`: "jalan" +
//!    a street, a phone number, …), so the shape making a mix's tail is named. To look
//!    into the plans afterwards, `ADUAN_LISTBENCH_KEEP=1` keeps the SQLite database (its
//!    run directory) and, with `--pg-url`, the PostgreSQL database.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use crate::rng::Rng;
use aduan_core::{Channel, Status, TicketCode};
use aduan_store::{Cursor, Store, StoreOptions, TicketFilter};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use serde_json::json;

/// p99 of the ticket list the inbox should stay under, per engine.
pub const TARGET_P99_MS: f64 = 20.0;
/// Unmeasured queries before each mix.
const WARMUP: usize = 20;
/// Rows per page, as the inbox and the API ask by default.
const PAGE: i64 = 50;
/// Runs of each worker scan.
const WORKER_RUNS: usize = 20;
/// The tables the generator fills.
const TABLES: [&str; 5] = ["reporters", "identities", "tickets", "messages", "notifications"];

// --- Generation ------------------------------------------------------------------------

/// The OPDs and categories of `config/opd.toml`.
pub struct Registry {
    opds: Vec<String>,
    /// (kecamatan name, its office's OPD code)
    kecamatan: Vec<(String, String)>,
    /// (category code, OPD code or "kecamatan")
    categories: Vec<(String, String)>,
}

impl Registry {
    pub fn load(path: &Path) -> anyhow::Result<Registry> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let doc: toml::Value = toml::from_str(&text)?;
        let str_of =
            |t: &toml::Value, k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let mut reg = Registry { opds: Vec::new(), kecamatan: Vec::new(), categories: Vec::new() };
        for o in doc.get("opd").and_then(|v| v.as_array()).into_iter().flatten() {
            let code = str_of(o, "code").context("an [[opd]] without a code")?;
            if let Some(k) = str_of(o, "kecamatan") {
                reg.kecamatan.push((k, code.clone()));
            }
            reg.opds.push(code);
        }
        for c in doc.get("category").and_then(|v| v.as_array()).into_iter().flatten() {
            let code = str_of(c, "code").context("a [[category]] without a code")?;
            reg.categories.push((code, str_of(c, "opd").unwrap_or_else(|| "kecamatan".into())));
        }
        if reg.opds.is_empty() || reg.kecamatan.is_empty() || reg.categories.is_empty() {
            bail!("{} has no OPDs, kecamatan offices or categories", path.display());
        }
        Ok(reg)
    }
}

const CHANNELS: [(Channel, u32); 9] = [
    (Channel::Whatsapp, 30),
    (Channel::Web, 20),
    (Channel::Email, 12),
    (Channel::Sms, 10),
    (Channel::Telegram, 10),
    (Channel::Instagram, 6),
    (Channel::Messenger, 5),
    (Channel::X, 4),
    (Channel::Open311, 3),
];

/// Complaint templates: `{s}` a street, `{n}` a number. "lampu" is in one of six (a
/// common word), each street name in about one ticket in four thousand (a rare word).
const TEXTS: [&str; 12] = [
    "Jalan {s} di depan balai desa rusak parah, banyak lubang dan membahayakan pengendara.",
    "Sampah menumpuk di pinggir sungai dekat {s} sudah seminggu belum diangkut.",
    "Lampu penerangan jalan di {s} mati sejak {n} hari, gelap dan rawan kejahatan.",
    "Mohon bantuan, KTP elektronik saya belum jadi padahal sudah {n} bulan.",
    "Air PDAM tidak mengalir sejak kemarin pagi di perumahan {s} blok {n}.",
    "Saluran drainase di {s} tersumbat sehingga air meluap ke jalan setiap hujan.",
    "Pak, lampu jalan di gang {n} {s} kedip2 terus malam ini mati total.",
    "Pohon tumbang menutup jalan {s}, mohon segera dievakuasi sebelum ada korban.",
    "Ada pungutan uang gedung di sekolah dekat {s}, wali murid keberatan.",
    "Jalan berlubang di {s} sudah {n} bulan belum diperbaiki, sering terjadi kecelakaan.",
    "Tolong, sampah di TPS {s} dibakar tiap sore, asapnya masuk rumah warga.",
    "Lampu lalu lintas di perempatan {s} mati, kendaraan semrawut.",
];

/// Closing words some residents add.
const CLOSINGS: [&str; 4] =
    [" Terima kasih.", " Mohon segera ditindaklanjuti.", " Matur nuwun.", ""];

/// Street names: 2,000 single words (`kedungsarikidul`), each rare.
const STREET_A: [&str; 20] = [
    "karang", "sumber", "kali", "tegal", "wono", "sido", "banyu", "cempa", "kena", "mela", "suka",
    "mekar", "tama", "reja", "mulya", "purwa", "kedung", "pager", "ngampel", "bojong",
];
const STREET_B: [&str; 20] = [
    "sari", "rejo", "mulyo", "jaya", "asri", "indah", "makmur", "wangi", "harjo", "kerto", "tani",
    "luhur", "agung", "baru", "lestari", "manis", "anyar", "kulon", "wetan", "lor",
];
const STREET_C: [&str; 5] = ["", "an", "kidul", "tengah", "jati"];
const STREETS: usize = STREET_A.len() * STREET_B.len() * STREET_C.len();

/// Street `i` (modulo [`STREETS`]), capitalised as residents write it.
fn street(i: usize) -> String {
    let i = i % STREETS;
    let a = STREET_A[i % STREET_A.len()];
    let b = STREET_B[(i / STREET_A.len()) % STREET_B.len()];
    let c = STREET_C[i / (STREET_A.len() * STREET_B.len())];
    let mut name = format!("{a}{b}{c}");
    if let Some(first) = name.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    name
}

/// A time as both databases take it: fixed-width RFC 3339 UTC with milliseconds (the text
/// SQLite stores, which PostgreSQL's `timestamptz` input reads).
fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

struct Ticket {
    id: i64,
    code: String,
    status: Status,
    channel: Channel,
    reporter_id: Option<i64>,
    opd: Option<String>,
    category: Option<String>,
    location: Option<(f64, f64)>,
    merged_into: Option<i64>,
    created_at: String,
    updated_at: String,
    first_response_due_at: String,
    first_responded_at: Option<String>,
    resolved_at: Option<String>,
    route_pending: bool,
    kecamatan: Option<String>,
    resolution_due_at: Option<String>,
    resolution_budget: Option<&'static str>,
    paused_at: Option<String>,
    dispose_pending: bool,
    text: String,
    notifications: Vec<String>,
    /// When the deadline watcher must look at it next (what a watcher keeping up wrote).
    alert_at: Option<String>,
}

/// Everything the generator makes, row by row, the same for both engines.
struct Generator<'a> {
    rng: Rng,
    reg: &'a Registry,
    now: DateTime<Utc>,
    n: i64,
    reporters: i64,
    codes: HashSet<u64>,
}

const HOUR: i64 = 3_600_000;

impl<'a> Generator<'a> {
    fn new(reg: &'a Registry, now: DateTime<Utc>, n: usize) -> Generator<'a> {
        let n = n as i64;
        Generator {
            rng: Rng(0x5EED_ADA0),
            reg,
            now,
            n,
            reporters: (n / 3).max(1),
            codes: HashSet::with_capacity(n as usize),
        }
    }

    fn code(&mut self) -> String {
        loop {
            let e = self.rng.next() & 0xFF_FFFF_FFFF;
            if self.codes.insert(e) {
                let b = e.to_be_bytes();
                return TicketCode::from_entropy([b[3], b[4], b[5], b[6], b[7]]).to_string();
            }
        }
    }

    /// Ticket `id` (1-based); ids follow `created_at`.
    fn ticket(&mut self, id: i64) -> Ticket {
        let rng = &mut self.rng;
        let span_ms = 365 * 24 * HOUR;
        let step = span_ms / self.n;
        let created_ms = self.now.timestamp_millis() - span_ms
            + (id - 1) * step
            + rng.below(step.max(1) as u64) as i64;
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).unwrap_or_default();
        let created = at(created_ms);
        let age_h = (self.now.timestamp_millis() - created_ms) / HOUR;
        use Status::*;
        let status = if age_h < 48 {
            rng.weighted(&[
                (New, 35),
                (AwaitingIdentity, 10),
                (Assigned, 35),
                (InProgress, 15),
                (Resolved, 5),
            ])
        } else if age_h < 14 * 24 {
            rng.weighted(&[
                (New, 5),
                (AwaitingIdentity, 3),
                (Assigned, 20),
                (InProgress, 30),
                (Resolved, 35),
                (Rejected, 4),
                (Merged, 3),
            ])
        } else {
            rng.weighted(&[
                (New, 5),
                (AwaitingIdentity, 5),
                (Assigned, 20),
                (InProgress, 40),
                (Resolved, 850),
                (Rejected, 50),
                (Merged, 30),
            ])
        };
        let status = if status == Merged && id == 1 { Resolved } else { status };
        let channel = rng.weighted(&CHANNELS);
        let (category, cat_opd) = if rng.chance(0.85) {
            let (c, o) = rng.pick(&self.reg.categories);
            (Some(c.clone()), Some(o.clone()))
        } else {
            (None, None)
        };
        let kec = rng.chance(0.6).then(|| rng.pick(&self.reg.kecamatan).clone());
        let triage =
            matches!(status, New | AwaitingIdentity) || (status == Rejected && rng.chance(0.5));
        let opd = if triage {
            None
        } else {
            match (cat_opd.as_deref(), &kec) {
                (Some("kecamatan"), Some((_, office))) => Some(office.clone()),
                (Some("kecamatan"), None) | (None, _) => Some(rng.pick(&self.reg.opds).clone()),
                (Some(o), _) => Some(o.to_owned()),
            }
        };
        let due = created_ms + 24 * HOUR;
        let responded = match status {
            InProgress | Resolved | Rejected => true,
            Assigned => rng.chance(0.5),
            Merged => rng.chance(0.3),
            _ => false,
        };
        let first_responded = responded.then(|| {
            (created_ms + HOUR + rng.below(30 * HOUR as u64) as i64)
                .min(self.now.timestamp_millis())
        });
        let resolution_due = opd.as_ref().map(|_| created_ms + 7 * 24 * HOUR);
        let resolved = (status == Resolved).then(|| {
            (created_ms + 2 * HOUR + rng.below(20 * 24 * HOUR as u64) as i64)
                .min(self.now.timestamp_millis())
        });
        let paused = (status == AwaitingIdentity).then_some(created_ms + HOUR);
        let updated = [Some(created_ms), first_responded, resolved, paused]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(created_ms);
        let merged_into =
            (status == Merged).then(|| id - 1 - rng.below((id - 1).min(500) as u64) as i64);
        let location = rng.chance(0.3).then(|| {
            (
                -7.45 + rng.below(20_000) as f64 / 100_000.0,
                109.1 + rng.below(30_000) as f64 / 100_000.0,
            )
        });
        let now_ms = self.now.timestamp_millis();
        let open = status.is_open();
        let mut notifications = Vec::new();
        let mut dispose_pending = false;
        if let Some(o) = &opd {
            // The watcher sent every disposition but those of the last few minutes.
            if matches!(status, Assigned | InProgress) && now_ms - created_ms < HOUR / 6 {
                dispose_pending = true;
            } else {
                notifications.push(format!("disposition:{o}"));
            }
        }
        // A watcher keeping up: past 75% of a clock its warning went out, past the end its
        // escalation; the next look is the earliest point still ahead (warning points on
        // the wall clock here, which is near enough for the index's size).
        let mut next_alert: Option<i64> = None;
        if open && paused.is_none() && status != AwaitingIdentity {
            let mut clock = |start: i64, due: i64, kind: &str| {
                let warn = start + (due - start) * 3 / 4;
                if due < now_ms {
                    notifications.push(format!("escalation:{kind}"));
                    return;
                }
                let at = if warn < now_ms {
                    notifications.push(format!("warning:{kind}"));
                    due
                } else {
                    warn
                };
                next_alert = Some(next_alert.map_or(at, |n| n.min(at)));
            };
            if first_responded.is_none() {
                clock(created_ms, due, "first_response");
            }
            if let Some(r) = resolution_due {
                clock(created_ms, r, "resolution");
            }
        }
        let reporter_id = rng.chance(0.75).then(|| 1 + rng.below(self.reporters as u64) as i64);
        let route_pending = status == New && now_ms - created_ms < HOUR / 12;
        let text = rng
            .pick(&TEXTS)
            .replace("{s}", &street(rng.below(STREETS as u64) as usize))
            .replace("{n}", &(2 + rng.below(11)).to_string())
            + *rng.pick(&CLOSINGS);
        Ticket {
            id,
            code: self.code(),
            status,
            channel,
            reporter_id,
            opd,
            category,
            location,
            merged_into,
            created_at: ts(created),
            updated_at: ts(at(updated)),
            first_response_due_at: ts(at(due)),
            first_responded_at: first_responded.map(|t| ts(at(t))),
            resolved_at: resolved.map(|t| ts(at(t))),
            route_pending,
            kecamatan: kec.map(|(k, _)| k),
            resolution_due_at: resolution_due.map(|t| ts(at(t))),
            resolution_budget: resolution_due.map(|_| "5d"),
            paused_at: paused.map(|t| ts(at(t))),
            dispose_pending,
            text,
            notifications,
            alert_at: next_alert.map(|t| ts(at(t))),
        }
    }
}

/// What the generator tells the query mixes about the data.
#[derive(Default)]
struct Sample {
    max_id: i64,
    /// Codes of tickets spread over the whole table.
    codes: Vec<String>,
    /// The OPDs that hold tickets, busiest first.
    opds: Vec<String>,
    categories: Vec<String>,
    open: usize,
    overdue: usize,
    /// Residents (`+62812{r:08}` is resident r's phone).
    reporters: i64,
}

fn sample_of(t: &Ticket, sample: &mut Sample, now: &str, every: i64) {
    sample.max_id = t.id;
    if t.id % every == 0 {
        sample.codes.push(t.code.clone());
    }
    if t.status.is_open() {
        sample.open += 1;
        let fr = t.first_responded_at.is_none() && t.first_response_due_at.as_str() < now;
        let res = t.resolution_due_at.as_deref().is_some_and(|r| r < now);
        if t.paused_at.is_none() && (fr || res) {
            sample.overdue += 1;
        }
    }
}

// --- Loading -----------------------------------------------------------------------------

/// Fills a migrated SQLite database; returns what the mixes need to know.
fn load_sqlite(
    path: &Path,
    reg: &Registry,
    now: DateTime<Utc>,
    n: usize,
) -> anyhow::Result<Sample> {
    use rusqlite::params;
    let mut conn = rusqlite::Connection::open(path)?;
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; PRAGMA cache_size = -262144; \
         PRAGMA foreign_keys = OFF;",
    )?;
    let indexes: Vec<(String, String)> = {
        let list = TABLES.map(|t| format!("'{t}'")).join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ({list})"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (name, _) in &indexes {
        conn.execute_batch(&format!("DROP INDEX {name}"))?;
    }
    // The search index is built once at the end ('rebuild') instead of row by row.
    let triggers: Vec<(String, String)> = {
        let mut stmt = conn.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' \
             AND name LIKE 'ticket\\_search\\_%' ESCAPE '\\'",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (name, _) in &triggers {
        conn.execute_batch(&format!("DROP TRIGGER {name}"))?;
    }
    let mut g = Generator::new(reg, now, n);
    let mut sample = Sample { reporters: g.reporters, ..Sample::default() };
    let now_text = ts(now);
    let every = (n as i64 / 2000).max(1);
    let start = ts(now - chrono::Duration::days(366));
    let tx = conn.transaction()?;
    {
        let mut rep = tx.prepare(
            "INSERT INTO reporters (id, name, confidential, created_at) VALUES (?1, ?2, 0, ?3)",
        )?;
        let mut ident = tx.prepare(
            "INSERT INTO identities (id, reporter_id, kind, value, created_at) VALUES (?1, ?1, 'phone', ?2, ?3)",
        )?;
        for r in 1..=g.reporters {
            rep.execute(params![r, format!("Warga {r}"), start])?;
            ident.execute(params![r, format!("+62812{r:08}"), start])?;
        }
        let mut tk = tx.prepare(
            "INSERT INTO tickets (id, code, status, channel, reporter_id, opd, category, lat, lon, \
             merged_into, created_at, updated_at, last_message_at, first_response_due_at, \
             first_responded_at, resolved_at, route_pending, kecamatan, resolution_due_at, \
             first_response_budget, resolution_budget, paused_at, dispose_pending, alert_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11, ?13, ?14, ?15, ?16, \
             ?17, ?18, '24h', ?19, ?20, ?21, ?22)",
        )?;
        let mut msg = tx.prepare(
            "INSERT INTO messages (ticket_id, direction, channel, provider_id, identity_id, text, \
             automated, sent_at, stored_at) VALUES (?1, 'in', ?2, ?3, ?4, ?5, 0, ?6, ?6)",
        )?;
        let mut note = tx.prepare(
            "INSERT INTO notifications (ticket_id, key, created_at) VALUES (?1, ?2, ?3)",
        )?;
        for id in 1..=n as i64 {
            let t = g.ticket(id);
            sample_of(&t, &mut sample, &now_text, every);
            tk.execute(params![
                t.id,
                t.code,
                t.status.as_str(),
                t.channel.as_str(),
                t.reporter_id,
                t.opd,
                t.category,
                t.location.map(|l| l.0),
                t.location.map(|l| l.1),
                t.merged_into,
                t.created_at,
                t.updated_at,
                t.first_response_due_at,
                t.first_responded_at,
                t.resolved_at,
                t.route_pending,
                t.kecamatan,
                t.resolution_due_at,
                t.resolution_budget,
                t.paused_at,
                t.dispose_pending,
                t.alert_at,
            ])?;
            msg.execute(params![
                t.id,
                t.channel.as_str(),
                format!("gen-{id}"),
                t.reporter_id,
                t.text,
                t.created_at
            ])?;
            for k in &t.notifications {
                note.execute(params![t.id, k, t.updated_at])?;
            }
        }
    }
    tx.commit()?;
    for (_, sql) in &indexes {
        conn.execute_batch(sql)?;
    }
    for (_, sql) in &triggers {
        conn.execute_batch(sql)?;
    }
    // One bulk insert, merged as it goes by FTS5's automerge: the daemon's writer merges a
    // bounded step with each commit instead (migration 0033), with the same rule (a level
    // with 4 segments is merged), so the index ends up shaped as the daemon's would be.
    conn.execute_batch(
        "DELETE FROM ticket_search_dirty;
         INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 4);
         INSERT INTO ticket_search (rowid, code, place, name, body)
             SELECT id, code, place, name, body FROM ticket_search_docs;
         INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 0);",
    )?;
    conn.execute_batch("PRAGMA journal_mode = WAL;")?;
    sample.opds = busiest_opds(&conn)?;
    sample.categories = reg.categories.iter().map(|(c, _)| c.clone()).collect();
    Ok(sample)
}

fn busiest_opds(conn: &rusqlite::Connection) -> anyhow::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT opd FROM tickets WHERE opd IS NOT NULL GROUP BY opd ORDER BY COUNT(*) DESC",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// One field of a `COPY … FROM STDIN` text row.
fn field(out: &mut String, v: Option<&str>) {
    match v {
        None => out.push_str("\\N"),
        Some(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

fn row(out: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        field(out, *f);
    }
    out.push('\n');
}

/// A table being filled by `COPY`, flushed every few megabytes.
struct CopyIn<'c> {
    copy: sqlx::postgres::PgCopyIn<&'c mut sqlx::PgConnection>,
    buf: String,
}

impl<'c> CopyIn<'c> {
    async fn start(
        conn: &'c mut sqlx::PgConnection,
        table_cols: &str,
    ) -> anyhow::Result<CopyIn<'c>> {
        let copy = conn.copy_in_raw(&format!("COPY {table_cols} FROM STDIN")).await?;
        Ok(CopyIn { copy, buf: String::with_capacity(1 << 22) })
    }

    async fn row(&mut self, fields: &[Option<&str>]) -> anyhow::Result<()> {
        row(&mut self.buf, fields);
        if self.buf.len() > (1 << 22) - 4096 {
            self.copy.send(std::mem::take(&mut self.buf).into_bytes()).await?;
        }
        Ok(())
    }

    async fn finish(mut self) -> anyhow::Result<u64> {
        if !self.buf.is_empty() {
            self.copy.send(std::mem::take(&mut self.buf).into_bytes()).await?;
        }
        Ok(self.copy.finish().await?)
    }
}

/// Fills a migrated PostgreSQL database with the same rows as [`load_sqlite`].
async fn load_pg(url: &str, reg: &Registry, now: DateTime<Utc>, n: usize) -> anyhow::Result<()> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await?;
    // Foreign keys are checked by triggers, which a superuser may switch off for the load
    // (the rows are consistent by construction); without the right, they stay on.
    let _ = sqlx::query("SET session_replication_role = replica").execute(&mut conn).await;
    let indexes: Vec<(String, String)> = sqlx::query(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() \
         AND tablename = ANY($1) AND indexname NOT IN (SELECT conname FROM pg_constraint)",
    )
    .bind(TABLES.map(str::to_owned).to_vec())
    .fetch_all(&mut conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    for (name, _) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP INDEX {name}"))).execute(&mut conn).await?;
    }
    let mut g = Generator::new(reg, now, n);
    let start = ts(now - chrono::Duration::days(366));
    let bool_text = |b: bool| if b { "t" } else { "f" };
    {
        let mut rep =
            CopyIn::start(&mut conn, "reporters (id, name, confidential, created_at)").await?;
        for r in 1..=g.reporters {
            let (id, name) = (r.to_string(), format!("Warga {r}"));
            rep.row(&[Some(&id), Some(&name), Some("f"), Some(&start)]).await?;
        }
        rep.finish().await?;
        let mut ident =
            CopyIn::start(&mut conn, "identities (id, reporter_id, kind, value, created_at)")
                .await?;
        for r in 1..=g.reporters {
            let (id, value) = (r.to_string(), format!("+62812{r:08}"));
            ident.row(&[Some(&id), Some(&id), Some("phone"), Some(&value), Some(&start)]).await?;
        }
        ident.finish().await?;
    }
    // Tickets, messages and notifications come from one pass of the generator; they are
    // buffered per table in text and copied table by table.
    let (mut tickets, mut messages, mut notes) = (String::new(), String::new(), String::new());
    let mut chunks: Vec<(String, String, String)> = Vec::new();
    for id in 1..=n as i64 {
        let t = g.ticket(id);
        let s = |v: &Option<String>| v.clone();
        let idt = id.to_string();
        let rid = t.reporter_id.map(|r| r.to_string());
        let (lat, lon) = (t.location.map(|l| l.0.to_string()), t.location.map(|l| l.1.to_string()));
        let merged = t.merged_into.map(|m| m.to_string());
        row(
            &mut tickets,
            &[
                Some(&idt),
                Some(&t.code),
                Some(t.status.as_str()),
                Some(t.channel.as_str()),
                rid.as_deref(),
                t.opd.as_deref(),
                t.category.as_deref(),
                lat.as_deref(),
                lon.as_deref(),
                merged.as_deref(),
                Some(&t.created_at),
                Some(&t.updated_at),
                Some(&t.created_at),
                Some(&t.first_response_due_at),
                s(&t.first_responded_at).as_deref(),
                s(&t.resolved_at).as_deref(),
                Some(bool_text(t.route_pending)),
                t.kecamatan.as_deref(),
                t.resolution_due_at.as_deref(),
                Some("24h"),
                t.resolution_budget,
                t.paused_at.as_deref(),
                Some(bool_text(t.dispose_pending)),
                t.alert_at.as_deref(),
            ],
        );
        let provider = format!("gen-{id}");
        row(
            &mut messages,
            &[
                Some(&idt),
                Some("in"),
                Some(t.channel.as_str()),
                Some(&provider),
                rid.as_deref(),
                Some(&t.text),
                Some("f"),
                Some(&t.created_at),
                Some(&t.created_at),
            ],
        );
        for k in &t.notifications {
            row(&mut notes, &[Some(&idt), Some(k), Some(&t.updated_at)]);
        }
        if tickets.len() > 1 << 24 {
            chunks.push((
                std::mem::take(&mut tickets),
                std::mem::take(&mut messages),
                std::mem::take(&mut notes),
            ));
        }
    }
    chunks.push((tickets, messages, notes));
    let targets = [
        "tickets (id, code, status, channel, reporter_id, opd, category, lat, lon, merged_into, \
         created_at, updated_at, last_message_at, first_response_due_at, first_responded_at, \
         resolved_at, route_pending, kecamatan, resolution_due_at, first_response_budget, \
         resolution_budget, paused_at, dispose_pending, alert_at)",
        "messages (ticket_id, direction, channel, provider_id, identity_id, text, automated, \
         sent_at, stored_at)",
        "notifications (ticket_id, key, created_at)",
    ];
    for (i, target) in targets.iter().enumerate() {
        let mut copy = conn.copy_in_raw(&format!("COPY {target} FROM STDIN")).await?;
        for chunk in &chunks {
            let data = match i {
                0 => &chunk.0,
                1 => &chunk.1,
                _ => &chunk.2,
            };
            copy.send(data.as_bytes()).await?;
        }
        copy.finish().await?;
    }
    drop(chunks);
    let _ = sqlx::query("SET session_replication_role = DEFAULT").execute(&mut conn).await;
    for (_, def) in &indexes {
        sqlx::query(sqlx::AssertSqlSafe(def.clone())).execute(&mut conn).await?;
    }
    // The search documents in one statement (the triggers were off for the load, or made
    // them row by row), then their GIN index.
    for sql in [
        "DROP INDEX ticket_search_doc",
        "TRUNCATE ticket_search",
        "INSERT INTO ticket_search (ticket_id, doc) SELECT t.id, setweight(to_tsvector('simple', aduan_fold(t.code || ' ' || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' ' || coalesce(r.name, ''))), 'A') || to_tsvector('simple', aduan_fold(coalesce(m.body, ''))) FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id LEFT JOIN (SELECT ticket_id, string_agg(text, ' ' ORDER BY id) AS body FROM messages WHERE direction = 'in' GROUP BY ticket_id) m ON m.ticket_id = t.id",
        "CREATE INDEX ticket_search_doc ON ticket_search USING gin (doc)",
    ] {
        sqlx::query(sql).execute(&mut conn).await?;
    }
    // Identity columns go on after the ids given explicitly.
    for t in TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM {t}), false)"
        )))
        .execute(&mut conn)
        .await?;
    }
    sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

// --- Measuring ---------------------------------------------------------------------------

/// A named way of choosing the next query.
struct Mix {
    name: &'static str,
    /// How many kinds of query it rotates through (each gets its plan printed).
    variants: usize,
    next: fn(&mut Rng, &Sample, usize) -> TicketFilter,
}

fn page() -> TicketFilter {
    TicketFilter { limit: PAGE, ..TicketFilter::default() }
}

/// A cursor at ticket id `id` (what a previous page ending just above it handed out).
fn cursor_at(id: i64) -> Option<Cursor> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("t{id}")).parse().ok()
}

fn mixes() -> Vec<Mix> {
    vec![
        Mix { name: "first page", variants: 1, next: |_, _, _| page() },
        Mix {
            name: "by status",
            variants: 1,
            next: |_, _, i| TicketFilter {
                status: Some(Status::ALL[i % Status::ALL.len()]),
                ..page()
            },
        },
        Mix {
            name: "by OPD",
            variants: 1,
            next: |_, s, i| TicketFilter { opd: Some(s.opds[i % s.opds.len()].clone()), ..page() },
        },
        Mix {
            name: "by channel",
            variants: 1,
            next: |_, _, i| TicketFilter {
                channel: Some(Channel::ALL[i % Channel::ALL.len()]),
                ..page()
            },
        },
        Mix {
            name: "by category",
            variants: 1,
            next: |_, s, i| TicketFilter {
                category: Some(s.categories[i % s.categories.len()].clone()),
                ..page()
            },
        },
        Mix {
            name: "overdue",
            variants: 1,
            next: |_, _, _| TicketFilter { overdue: Some(true), ..page() },
        },
        Mix {
            name: "search by code",
            variants: 1,
            next: |r, s, _| TicketFilter { q: Some(r.pick(&s.codes).to_lowercase()), ..page() },
        },
        Mix {
            name: "deep pages",
            variants: 3,
            next: |r, s, i| {
                let cursor = cursor_at(PAGE + r.below(s.max_id as u64) as i64);
                match i % 3 {
                    0 => TicketFilter { cursor, ..page() },
                    1 => TicketFilter { cursor, status: Some(Status::Resolved), ..page() },
                    _ => TicketFilter {
                        cursor,
                        opd: Some(s.opds[i % s.opds.len()].clone()),
                        ..page()
                    },
                }
            },
        },
        Mix {
            name: "official (own OPD)",
            variants: 4,
            next: |_, s, i| {
                let opd = Some(s.opds[(i / 4) % s.opds.len()].clone());
                match i % 4 {
                    0 => TicketFilter { opd, ..page() },
                    1 => TicketFilter { opd, status: Some(Status::Assigned), ..page() },
                    2 => TicketFilter { opd, status: Some(Status::InProgress), ..page() },
                    _ => TicketFilter { opd, overdue: Some(true), ..page() },
                }
            },
        },
        Mix {
            name: SEARCH_RARE,
            variants: 4,
            next: |r, s, i| {
                let name = street(r.below(STREETS as u64) as usize);
                match i % 4 {
                    0 => TicketFilter { q: Some(name), ..page() },
                    1 => {
                        TicketFilter { q: Some(format!("jalan {}", name.to_lowercase())), ..page() }
                    }
                    2 => {
                        let resident = 1 + r.below(s.reporters.max(1) as u64);
                        TicketFilter { q: Some(format!("0812-{resident:08}")), ..page() }
                    }
                    _ => TicketFilter {
                        q: Some(name),
                        opd: Some(s.opds[(i / 4) % s.opds.len()].clone()),
                        ..page()
                    },
                }
            },
        },
        Mix {
            name: SEARCH_COMMON,
            variants: 4,
            next: |_, s, i| match i % 4 {
                0 => TicketFilter { q: Some("lampu".into()), ..page() },
                1 => TicketFilter { q: Some("jalan rusak".into()), ..page() },
                2 => TicketFilter {
                    q: Some("lampu mati".into()),
                    opd: Some(s.opds[(i / 4) % s.opds.len()].clone()),
                    ..page()
                },
                _ => TicketFilter {
                    q: Some("sampah".into()),
                    status: Some(Status::InProgress),
                    ..page()
                },
            },
        },
    ]
}

/// The two text-search mixes, each with its own target too.
const SEARCH_RARE: &str = "search: rare words";
const SEARCH_COMMON: &str = "search: common words";
/// The name of the deadline watcher's query row.
const WATCH_SCAN: &str = "deadline_scan(1000)";
/// The deadline watcher's store query (`Store::deadline_scan`) must stay under this.
pub const TARGET_WATCH_MS: f64 = 50.0;

/// The filters a query sets, for the printed plans.
fn describe(f: &TicketFilter) -> String {
    let mut parts = Vec::new();
    if let Some(s) = f.status {
        parts.push(format!("status={s}"));
    }
    if let Some(o) = &f.opd {
        parts.push(format!("opd={o}"));
    }
    if f.overdue.is_some() {
        parts.push("overdue".to_owned());
    }
    if f.cursor.is_some() {
        parts.push("cursor".to_owned());
    }
    if let Some(q) = &f.q {
        parts.push(format!("q={q:?}"));
    }
    if parts.is_empty() { "no filter".to_owned() } else { parts.join(", ") }
}

/// Sorted microseconds → the nearest-rank percentile in ms.
fn percentile_ms(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

pub struct MixResult {
    name: String,
    queries: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    rows: usize,
    plan: Vec<String>,
    /// Per query shape of a mix with several (`i % variants`): its first query's filters,
    /// p50, p99 and max in ms, so the shape that makes a mix's tail is named.
    shapes: Vec<(String, f64, f64, f64)>,
}

impl MixResult {
    fn of(name: &str, mut micros: Vec<u64>, rows: usize, plan: Vec<String>) -> MixResult {
        micros.sort_unstable();
        MixResult {
            name: name.to_owned(),
            queries: micros.len(),
            p50_ms: percentile_ms(&micros, 50.0),
            p99_ms: percentile_ms(&micros, 99.0),
            max_ms: micros.last().copied().unwrap_or(0) as f64 / 1000.0,
            rows,
            plan,
            shapes: Vec::new(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "name": self.name, "queries": self.queries, "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms, "max_ms": self.max_ms, "rows": self.rows, "plan": self.plan,
        })
    }
}

pub struct EngineReport {
    engine: &'static str,
    load_secs: f64,
    mixes: Vec<MixResult>,
    overall: MixResult,
    workers: Vec<MixResult>,
}

impl EngineReport {
    fn pass(&self) -> bool {
        self.overall.p99_ms <= TARGET_P99_MS
    }

    fn mix(&self, name: &str) -> Option<&MixResult> {
        self.mixes.iter().chain(&self.workers).find(|m| m.name == name)
    }

    /// The text-search mixes and the watcher's query against their own targets:
    /// (row name, mix, target ms).
    fn targets(&self) -> Vec<(String, &MixResult, f64)> {
        let mut out = Vec::new();
        for name in [SEARCH_RARE, SEARCH_COMMON] {
            if let Some(m) = self.mix(name) {
                out.push((format!("{} {name}", self.engine), m, TARGET_P99_MS));
            }
        }
        if let Some(m) = self.mix(WATCH_SCAN) {
            out.push((format!("{} watch round query", self.engine), m, TARGET_WATCH_MS));
        }
        out
    }
}

async fn measure(
    engine: &'static str,
    url: &str,
    sample: &Sample,
    queries: usize,
    load_secs: f64,
) -> anyhow::Result<EngineReport> {
    let store = Store::open(url, StoreOptions::default()).await?;
    let mut rng = Rng(0xB0B);
    let mut all = Vec::new();
    let mut results = Vec::new();
    for mix in mixes() {
        let mut plan = Vec::new();
        for i in 0..mix.variants {
            let f = (mix.next)(&mut rng, sample, i);
            if mix.variants > 1 {
                plan.push(format!("-- {}", describe(&f)));
            }
            plan.extend(store.explain_tickets(&f).await?);
        }
        for i in 0..WARMUP {
            store.tickets(&(mix.next)(&mut rng, sample, i)).await?;
        }
        let mut micros = Vec::with_capacity(queries);
        let mut rows = 0;
        let mut shapes = vec![(String::new(), Vec::new()); mix.variants];
        for i in 0..queries {
            let f = (mix.next)(&mut rng, sample, i);
            let t0 = Instant::now();
            let page =
                store.tickets(&f).await.with_context(|| format!("{engine}: {}", mix.name))?;
            let took = t0.elapsed().as_micros() as u64;
            micros.push(took);
            rows += page.items.len();
            let shape = &mut shapes[i % mix.variants];
            if shape.0.is_empty() {
                shape.0 = describe(&f);
            }
            shape.1.push(took);
        }
        all.extend_from_slice(&micros);
        let mut result = MixResult::of(mix.name, micros, rows, plan);
        if mix.variants > 1 {
            for (label, mut m) in shapes {
                m.sort_unstable();
                let max = m.last().copied().unwrap_or(0) as f64 / 1000.0;
                let (p50, p99) = (percentile_ms(&m, 50.0), percentile_ms(&m, 99.0));
                result.shapes.push((label, p50, p99, max));
            }
        }
        results.push(result);
    }
    let overall = MixResult::of("all mixes", all, 0, Vec::new());

    let plans = store.explain_worker_scans().await?;
    let plan_of = |name: &str| {
        plans.iter().find(|(n, _)| *n == name).map(|(_, p)| p.clone()).unwrap_or_default()
    };
    let mut workers = Vec::new();
    let now = Utc::now();
    let (mut micros, mut rows) = (Vec::new(), 0);
    for _ in 0..WORKER_RUNS {
        let t0 = Instant::now();
        rows += store.undisposed(100, now).await?.len();
        micros.push(t0.elapsed().as_micros() as u64);
    }
    workers.push(MixResult::of("undisposed(100)", micros, rows, plan_of("undisposed")));
    let (mut micros, mut rows) = (Vec::new(), 0);
    // The watcher's query as a round runs it (a read: every run finds the same tickets).
    for _ in 0..WORKER_RUNS {
        let t0 = Instant::now();
        rows += store.deadline_scan(1000, now).await?.len();
        micros.push(t0.elapsed().as_micros() as u64);
    }
    workers.push(MixResult::of(WATCH_SCAN, micros, rows, plan_of("deadline_scan")));
    let (mut micros, mut rows) = (Vec::new(), 0);
    for _ in 0..WORKER_RUNS {
        let t0 = Instant::now();
        // A lease of zero: every run finds the same tickets again.
        rows += store
            .route_claim(20, chrono::Duration::zero(), Utc::now() - chrono::Duration::seconds(1))
            .await?
            .len();
        micros.push(t0.elapsed().as_micros() as u64);
    }
    workers.push(MixResult::of("route_claim(20)", micros, rows, plan_of("route_claim")));
    store.close().await;
    Ok(EngineReport { engine, load_secs, mixes: results, overall, workers })
}

// --- The phase ---------------------------------------------------------------------------

pub struct ListReport {
    tickets: usize,
    open: usize,
    overdue: usize,
    engines: Vec<EngineReport>,
}

/// Where the PostgreSQL half runs: a private cluster of ours, or a database we made on the
/// server of `--pg-url`.
enum PgServer {
    Ours(crate::pg::Cluster),
    Theirs { admin: String },
}

/// Runs the phase in the bench's run directory `dir`.
pub fn run(
    root: &Path,
    dir: &Path,
    n: usize,
    queries: usize,
    pg_url: Option<&str>,
) -> anyhow::Result<ListReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start a runtime")?;
    let reg = Registry::load(&root.join("config/opd.toml"))?;
    let now = aduan_store::now();

    eprintln!("bench: inbox list: generating {n} tickets into SQLite");
    let path = dir.join("listbench.db");
    let url = format!("sqlite://{}", path.display());
    let t0 = Instant::now();
    rt.block_on(async {
        let s = Store::open(&url, StoreOptions::default()).await?;
        s.migrate().await?;
        s.close().await;
        anyhow::Ok(())
    })?;
    let sample = load_sqlite(&path, &reg, now, n)?;
    let load = t0.elapsed().as_secs_f64();
    if sample.codes.is_empty() || sample.opds.is_empty() {
        bail!("the generated database has no tickets to query");
    }
    eprintln!("bench: inbox list: SQLite loaded in {load:.1} s; measuring");
    let sqlite = rt.block_on(measure("SQLite", &url, &sample, queries, load))?;
    // `ADUAN_LISTBENCH_KEEP=1` keeps both databases (with `--pg-url`) to look into.
    let keep = std::env::var_os("ADUAN_LISTBENCH_KEEP").is_some();
    if keep {
        eprintln!("bench: inbox list: kept {}", path.display());
    } else {
        let _ = std::fs::remove_file(&path);
    }

    let server = match pg_url {
        Some(u) => PgServer::Theirs { admin: u.to_owned() },
        None => {
            eprintln!("bench: inbox list: starting a private PostgreSQL cluster");
            PgServer::Ours(crate::pg::Cluster::start()?)
        }
    };
    let admin = match &server {
        PgServer::Ours(c) => c.url.clone(),
        PgServer::Theirs { admin } => admin.clone(),
    };
    let name = format!("aduan_listbench_{}", std::process::id());
    let (head, _) = admin.rsplit_once('/').context("--pg-url needs a database path")?;
    let db_url = format!("{head}/{name}");
    let pg = rt.block_on(async {
        use sqlx::Connection;
        let mut a =
            sqlx::PgConnection::connect(&admin).await.context("cannot connect to PostgreSQL")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut a).await?;
        let result = async {
            eprintln!("bench: inbox list: generating {n} tickets into PostgreSQL");
            let t0 = Instant::now();
            let s = Store::open(&db_url, StoreOptions::default()).await?;
            s.migrate().await?;
            s.close().await;
            load_pg(&db_url, &reg, now, n).await?;
            let load = t0.elapsed().as_secs_f64();
            eprintln!("bench: inbox list: PostgreSQL loaded in {load:.1} s; measuring");
            measure("PostgreSQL", &db_url, &sample, queries, load).await
        }
        .await;
        let dropped = if keep {
            eprintln!("bench: inbox list: kept the PostgreSQL database {name}");
            Ok(Default::default())
        } else {
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
                .execute(&mut a)
                .await
        };
        let report = result?;
        dropped?;
        anyhow::Ok(report)
    })?;
    drop(server);
    Ok(ListReport {
        tickets: n,
        open: sample.open,
        overdue: sample.overdue,
        engines: vec![sqlite, pg],
    })
}

impl ListReport {
    pub fn render(&self) -> String {
        let mut out = format!(
            "\ninbox list at {} tickets ({} open, {} overdue); {} per page, one query at a time\n",
            self.tickets, self.open, self.overdue, PAGE
        );
        for e in &self.engines {
            let _ = writeln!(out, "  {} (generated and indexed in {:.1} s)", e.engine, e.load_secs);
            for m in &e.mixes {
                let _ = writeln!(
                    out,
                    "    {:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  ({} queries)",
                    m.name, m.p50_ms, m.p99_ms, m.max_ms, m.queries
                );
                for (label, p50, p99, max) in &m.shapes {
                    let _ = writeln!(
                        out,
                        "      p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  max {max:>7.2} ms  {label}"
                    );
                }
            }
            let _ = writeln!(
                out,
                "    {:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  (target <= {TARGET_P99_MS:.0})   {}",
                format!("{} list, all mixes", e.engine),
                e.overall.p50_ms,
                e.overall.p99_ms,
                if e.pass() { "PASS" } else { "FAIL" }
            );
            for (name, m, target) in e.targets() {
                let _ = writeln!(
                    out,
                    "    {:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  (target <= {target:.0})   {}",
                    name,
                    m.p50_ms,
                    m.p99_ms,
                    if m.p99_ms <= target { "PASS" } else { "FAIL" }
                );
            }
            for m in &e.workers {
                let _ = writeln!(
                    out,
                    "    {:<24} p50 {:>7.2} ms  p99 {:>7.2} ms  ({} runs, not in the target)",
                    m.name, m.p50_ms, m.p99_ms, m.queries
                );
            }
            let _ = writeln!(out, "    plans:");
            for m in e.mixes.iter().chain(&e.workers) {
                let _ = writeln!(out, "      {}:", m.name);
                for line in &m.plan {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "tickets": self.tickets,
            "open": self.open,
            "overdue": self.overdue,
            "page": PAGE,
            "target_p99_ms": TARGET_P99_MS,
            "engines": self.engines.iter().map(|e| json!({
                "engine": e.engine,
                "load_secs": e.load_secs,
                "p50_ms": e.overall.p50_ms,
                "p99_ms": e.overall.p99_ms,
                "pass": e.pass(),
                "mixes": e.mixes.iter().map(MixResult::to_json).collect::<Vec<_>>(),
                "targets": e.targets().iter().map(|(name, m, target)| json!({
                    "name": name, "p50_ms": m.p50_ms, "p99_ms": m.p99_ms,
                    "target_p99_ms": target, "pass": m.p99_ms <= *target,
                })).collect::<Vec<_>>(),
                "workers": e.workers.iter().map(MixResult::to_json).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_deterministic_and_plausible() {
        let reg = Registry::load(&crate::workspace_root().join("config/opd.toml")).unwrap();
        let now = DateTime::from_timestamp_millis(1_780_000_000_000).unwrap();
        let make = || {
            let mut g = Generator::new(&reg, now, 3000);
            (1..=3000).map(|id| g.ticket(id)).collect::<Vec<_>>()
        };
        let (a, b) = (make(), make());
        assert!(a.iter().zip(&b).all(|(x, y)| x.code == y.code && x.status == y.status));
        let codes: HashSet<_> = a.iter().map(|t| &t.code).collect();
        assert_eq!(codes.len(), a.len(), "codes are unique");
        assert!(a.windows(2).all(|w| w[0].created_at <= w[1].created_at), "ids follow time");
        let open = a.iter().filter(|t| t.status.is_open()).count();
        assert!((100..800).contains(&open), "a backlog, not a flood: {open} open");
        assert!(a.iter().all(|t| t.merged_into.is_none_or(|m| m < t.id)));
        assert!(a.iter().all(|t| t.code.parse::<TicketCode>().is_ok()));
    }

    #[test]
    fn copy_fields_are_escaped() {
        let mut out = String::new();
        row(&mut out, &[Some("a\tb\\c\nd"), None, Some("")]);
        assert_eq!(out, "a\\tb\\\\c\\nd\t\\N\t\n");
    }

    #[test]
    fn cursors_are_made_as_the_store_makes_them() {
        assert!(cursor_at(12_345).is_some());
        assert_eq!(percentile_ms(&[1000, 2000, 3000, 4000], 50.0), 2.0);
        assert_eq!(percentile_ms(&[1000, 2000, 3000, 4000], 99.0), 4.0);
    }
}
