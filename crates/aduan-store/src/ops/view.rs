//! Reading tickets: one ticket with its thread and events, and the filtered, keyset-paged
//! ticket list (with its `EXPLAIN` for the benchmark).
//!
//! **The list at scale (migration 0009).** [`list_tickets`] builds its statement from the
//! filters that are set (no `$n IS NULL OR …` terms), so every filter combination is its own
//! prepared statement with its own plan, newest first, keyset-paged by `t.id < cursor`; it
//! never counts the table. Each query shape has an index that yields rows already in
//! `id DESC` order, so a page reads about `limit` index entries at any table size:
//!
//! | index | serves |
//! |---|---|
//! | `tickets` primary key | first page, deep cursor pages |
//! | `tickets_status (status, id)` | `status=` |
//! | `tickets_opd (opd, id)` | `opd=` (an official's list) |
//! | `tickets_opd_status (opd, status, id)` | an official's list with a status |
//! | `tickets_channel (channel, id)` | `channel=` |
//! | `tickets_category (category, id)` | `category=` / Open311 `service_code` |
//! | `tickets_open (id, paused_at, …) WHERE status IN (open statuses)` | `overdue=true` |
//! | `tickets_alert (alert_at) WHERE alert_at IS NOT NULL` (0022) | the deadline watcher's scan (`Store::deadline_scan`) |
//! | the unique index on `code` | `q=` that is a ticket code (a lookup, not a text search) |
//! | `ticket_search` (FTS5 / tsvector GIN, migration 0022) | any other `q=` |
//! | `tickets_dispose (id) WHERE dispose_pending` | `Store::undisposed` |
//! | `tickets_route (route_pending, id)` | `Store::route_claim` |
//!
//! A query meant for a partial index repeats the index's `WHERE` word for word
//! (`overdue_sql!`): SQLite uses a partial index only then. SQLite plans
//! without statistics (the daemon never runs `ANALYZE`), so the two walks it would get wrong
//! say `INDEXED BY tickets_open` (`OPEN_SELECT`, SQLite only).
//!
//! **Text search (migration 0022, [`search_tickets`]).** A `q` that is a ticket code looks
//! the code up; one that is a phone number (eight digits or more, any usual form) lists
//! the tickets of the resident with that phone (or WhatsApp) identity. Any other `q` is
//! searched in a full-text index holding one document per ticket: its code, its place and
//! kecamatan, its reporter's name and the text of its inbound messages (answers and
//! automatic messages are not indexed: every receipt would match every query). The index
//! is kept by triggers in the transaction of the write that changes a document, so no
//! write path knows about it (the intake writer's batches keep it for free).
//!
//! - *Words.* The query is cut into words as the indexes cut text ([`search_terms`]: runs
//!   of letters and digits, lower-cased); every word must match; the last one is a prefix
//!   while it is being typed (two characters or more, no trailing space). Each word is
//!   passed quoted ([`fts5_query`], [`tsquery`]), so quotes, `*`, `:`, `-`, `^`, `NEAR`,
//!   `OR`, `NOT`, `&`, `!` or parentheses in the box are never syntax and never an error:
//!   `lampu OR sampah` asks for the three words. Diacritics don't count (`jalán` = `jalan`).
//! - *Ranking.* When at most [`RANK_CAP`] (1,000) documents match, the best first: bm25
//!   (SQLite; the code weighs 10, place and name 5, messages 1) or `ts_rank` (PostgreSQL,
//!   the code, place and name with weight A), then the newest. When more match (a common
//!   word alone: "lampu" is in one complaint in six) the matches are listed newest first:
//!   scoring a hundred thousand near-identical complaints costs 100+ ms and tells them
//!   apart no better than their age, while an operator adding a second word (a street, a
//!   desa) is back under the cap and ranked. Which of the two never reads a common word's
//!   whole posting list ([`count_mode`], migration 0024): PostgreSQL asks its own
//!   statistics first (`pg_stats.most_common_elems` of `ticket_search.doc`, what `ANALYZE`
//!   found: a word in more than about one document in a hundred is in that list with its
//!   frequency) and lists a query estimated at more than 5,000 matches newest first
//!   without counting; anything rarer, or any query before the first `ANALYZE`, is counted
//!   from its GIN matches (up to 5,001) by the statement that answers it (`RankedCapped`,
//!   see "The tail" below), which is cheap because few documents match. SQLite
//!   counts in FTS5, which reads an exact word's doclist lazily (the count stops at the
//!   cap), but merges a whole prefix's doclists before its first row: the typed last word
//!   is counted as an exact word first, and when that exceeds the cap the prefix (a
//!   superset) does too. Why not always count: at a million tickets "lampu" has 250,000
//!   postings; a GIN bitmap of them costs 50+ ms, an FTS5 prefix merge 10 ms. Why not a
//!   term-count table kept by trigger: it would be one more write per word of every
//!   message on the intake path, for a decision the statistics make well enough. The cost
//!   of a wrong guess is bounded in one direction only: a query estimated common (every
//!   word common, taken as independent) that in fact matches few documents is answered
//!   newest first, and its walk reads documents until the page is full or the filters'
//!   index ends (a full walk when two common words never meet: "ktp lampu").
//! - *Paging.* Ranked pages are keyset-paged by (score, id): the cursor carries the last
//!   row's score (the bits of the `f64`) and id, and the next page asks for `score >
//!   last OR (score = last AND id < last_id)` in the order `score, id DESC`, so a static
//!   result is paged through with each ticket exactly once. The score depends on corpus
//!   statistics, so a write between two pages may move a ticket across the boundary (as in
//!   any search engine without snapshots). A cursor keeps the mode of the page it came from.
//!   Newest-first pages use the plain id cursor.
//! - *Filters.* The list's filters (status, OPD — an official's scope —, channel, category,
//!   confidential, overdue) are added to the search statement as to the list.
//! - *SQLite.* FTS5, external content (`ticket_search` over the view `ticket_search_docs`,
//!   rowid = ticket id), `unicode61 remove_diacritics 2`, prefix indexes of 2 and 3
//!   characters. Newest first makes the FTS index the outer loop, walked by descending
//!   rowid from the cursor, joined to the tickets: a page stops after `limit` hits.
//! - *PostgreSQL.* `ticket_search (ticket_id, doc tsvector)` with the `simple` configuration
//!   (no stemmer, no stop words: Indonesian names and slang stay as written) and a GIN
//!   index; `aduan_fold` folds diacritics with `translate` (the `unaccent` extension needs
//!   contrib and CREATE privilege). Newest first tests `ts_match_vq(doc, q)` (the function
//!   behind `@@`, which no index serves) on each ticket walked newest first through the
//!   list's own index, joined to `ticket_search` by its primary key: a page reads about
//!   `limit / share of matches` documents and never the GIN index. Ranked reads the GIN
//!   matches (at most about a thousand), scores and sorts them, then looks their tickets up
//!   in that order until the page is full (`LATERAL … OFFSET 0`, so a generic plan cannot
//!   hash the tickets table instead). Every search statement calls
//!   `aduan_tsq` (migration 0024), which is `PARALLEL UNSAFE` on purpose: parallel workers
//!   cost more to start (5–20 ms) than such a query takes. The message trigger appends a
//!   new message's words to its ticket's document (0024) instead of rebuilding it. Why not `pg_trgm`: a trigram GIN answers substrings, but
//!   a common word's trigrams match most of the table and every candidate must be rechecked
//!   on the heap (LIKE has no ranking either); operators search words, a phone or a code,
//!   all of which the word index or a lookup serves, and ranking needs a tsvector anyway.
//!
//! **The tail at a million tickets.** The medians were low but each engine had query shapes
//! costing 15–50 ms (timed one by one on the bench's 1M databases; `cargo xtask bench`
//! prints p50/p99 per shape of the search mixes). What they cost and what answers them now:
//!
//! - *bm25 counts every scored word's documents* (SQLite). FTS5's bm25 reads the whole
//!   doclist of each phrase once per query for its inverse document frequency: "jalan" is
//!   in four tickets in ten, so "jalan kedungwangi" (200 matches) took 30–40 ms. Each word
//!   is now counted up to the cap first ([`common_words`], about 0.1 ms a word: FTS5 reads
//!   an exact word's doclist lazily); a ranked query with rare and common words is scored
//!   on its rare words only and still required to match all of them
//!   (`+rowid IN (SELECT rowid … MATCH <all words>)`, a list built once, [`scored_words`]).
//!   A word in more than a thousand documents weighs next to nothing in bm25 (its IDF is
//!   near zero at a million tickets, clamped to zero above half), so the order barely moves;
//!   2 ms instead of 35.
//! - *A typed common word is merged as a prefix* (SQLite). "lampu" without a trailing space
//!   is `lampu*`, and FTS5 merges the doclists of every word a prefix longer than its prefix
//!   indexes (2 and 3) begins before the first row: a quarter of a million entries, 10–20 ms,
//!   in the newest-first walk and in its count ("lampu mati*", "jalan rusak*", "sampah*").
//!   When every word of a query is common, its last word is taken whole ([`search_prefix`]):
//!   such a query is listed newest first and its last word was typed in full. A query with
//!   a rare word keeps the prefix ("kedip lampu" finds "lampunya kedip"). Why not prefix
//!   indexes of 4–6 characters: they double the index entries per word on the intake path.
//!   PostgreSQL keeps the prefix (its newest-first walk tests `'lampu':*` per document at
//!   no extra cost), so there "lampu" also lists "lampunya".
//! - *One ticket lookup per GIN match* (PostgreSQL). Ranked and `NewestIndexed` looked every
//!   match's ticket up before sorting (1,300 lookups: 10 ms). The matches are now scored
//!   or taken by id and sorted alone, and looked up in that order until the page is full
//!   ([`PG_LOOKUP`]); cursor bounds go down into the matches. A filter with a `(column,
//!   id)` index (an official's OPD, a status, …) is probed in that index before a match's
//!   ticket row is read ([`pg_lookup`]): the heap is read for the page, not for every
//!   match the filter turns away.
//! - *Counting, then reading the same matches again* (PostgreSQL). Every GIN match is a
//!   heap visit of `ticket_search` (its `ticket_id`; its `doc` for the score), exact words
//!   as much as prefixes: GIN has no index-only scan, and `EXPLAIN (ANALYZE, BUFFERS)` of a
//!   `count(*)` of an exact street name shows a heap block per match. At a million tickets
//!   these visits are random page reads of a 300 MB table that the default 128 MB of
//!   `shared_buffers` does not hold: 10-20 µs each from the OS cache on the bench's
//!   machine, 18 ms for a ranked street name within an OPD (866 reads) that takes 2.8 ms
//!   warm. The tail was the same matches read two or three times: a typed last word's
//!   exact words counted first, then the ranked statement up to the cap + 1, then, over
//!   the cap, every match again newest first. A first page not common by the statistics
//!   is now one statement (`RankedCapped`, [`pg_capped_matches`]): at most 5,001 matches
//!   read once, counted by `count(*) OVER ()`, ranked when at most the cap match and
//!   listed newest first by the same statement when more do ([`pg_capped_mode`]); only a
//!   query the statistics missed (5,001 matches or more) is asked again, as the walk.

use aduan_core::action_link::hide_tokens;
use aduan_core::privacy::hide_keys;
use aduan_core::{
    Actor, AttachmentRef, Direction, EventKind, Identity, Purpose, Status, TicketCode,
};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::collections::HashMap;

use super::common::{
    OPEN_SELECT, Params, TICKET_SELECT, explain, load_ticket, location, overdue_sql, parse,
    ticket_row,
};
use crate::db::{Db, Value, args};
use crate::types::{
    Cursor, EventView, MessageView, Page, ReporterView, TicketFilter, TicketSummary, TicketView,
};
use crate::{Result, Store, now};

pub(crate) async fn ticket_view<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<TicketView>> {
    let Some(t) = load_ticket(c, code, now).await? else {
        return Ok(None);
    };
    let reporter = match t.reporter_id {
        Some(rid) => {
            let r = c
                .fetch_one(
                    "SELECT name, address, confidential FROM reporters WHERE id = $1",
                    args![rid],
                )
                .await?;
            let ids = c
                .fetch_all(
                    "SELECT kind, value FROM identities WHERE reporter_id = $1 ORDER BY id",
                    args![rid],
                )
                .await?;
            let identities = ids
                .iter()
                .map(|row| {
                    Ok(Identity {
                        kind: parse(&row.get::<String>("kind")?, "identity kind")?,
                        value: row.get("value")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(ReporterView {
                name: r.get("name")?,
                address: r.get("address")?,
                confidential: r.get("confidential")?,
                identities,
            })
        }
        None => None,
    };

    let mut attachments: HashMap<i64, Vec<AttachmentRef>> = HashMap::new();
    let mut attachment_ids: HashMap<i64, Vec<i64>> = HashMap::new();
    let rows = c.fetch_all(
        "SELECT a.id, a.message_id, a.filename, a.content_type, a.size, a.sha256, a.provider_ref \
         FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1 ORDER BY a.id", args![t.id])
    .await?;
    for row in rows {
        let size: i64 = row.get("size")?;
        attachment_ids.entry(row.get("message_id")?).or_default().push(row.get("id")?);
        attachments.entry(row.get("message_id")?).or_default().push(AttachmentRef {
            filename: row.get("filename")?,
            content_type: row.get("content_type")?,
            size: u64::try_from(size).unwrap_or(0),
            sha256: row.get("sha256")?,
            provider_ref: row.get("provider_ref")?,
        });
    }

    let rows = c
        .fetch_all(
            "SELECT m.id, m.direction, m.channel, m.text, m.sent_at, m.author, m.display_name, \
         m.lat, m.lon, m.revision_of, o.state, o.purpose, \
         o.receipt, o.receipt_at, o.sent_at AS out_sent_at, o.last_error FROM messages m \
         LEFT JOIN outbox o ON o.id = (SELECT MAX(l.id) FROM outbox l WHERE l.message_id = m.id) \
         WHERE m.ticket_id = $1 ORDER BY m.id",
            args![t.id],
        )
        .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get("id")?;
        let direction = match row.get::<String>("direction")?.as_str() {
            "out" => Direction::Out,
            _ => Direction::In,
        };
        let author: Option<String> = match direction {
            Direction::Out => row.get("author")?,
            Direction::In => row.get("display_name")?,
        };
        let state: Option<String> = row.get("state")?;
        let receipt = match &state {
            Some(state) => Some(aduan_core::DeliveryView::of(
                parse(state, "outbox state")?,
                row.get::<Option<String>>("receipt")?.map(|r| parse(&r, "receipt")).transpose()?,
                row.get("receipt_at")?,
                row.get("out_sent_at")?,
                row.get("last_error")?,
            )),
            None => None,
        };
        messages.push(MessageView {
            id,
            direction,
            channel: parse(&row.get::<String>("channel")?, "channel")?,
            text: row.get("text")?,
            at: row.get("sent_at")?,
            author,
            attachments: attachments.remove(&id).unwrap_or_default(),
            attachment_ids: attachment_ids.remove(&id).unwrap_or_default(),
            location: location(row.get("lat")?, row.get("lon")?),
            delivery: state.map(|s| parse(&s, "outbox state")).transpose()?,
            purpose: row
                .get::<Option<String>>("purpose")?
                .map(|p| parse(&p, "outbox purpose"))
                .transpose()?,
            revision_of: row.get("revision_of")?,
            receipt,
            deliveries: Vec::new(),
            delivery_note: None,
        });
    }
    super::outbox::fill_deliveries(c, t.id, &mut messages).await?;
    // The key of a confirmation link is the resident's alone: an official (or anyone who
    // reads the ticket) holding it could close the ticket in the resident's name.
    // (`…/lacak/ADU-…?k=<key>` → `…/lacak/ADU-…?k=…`: the resident got it in the message.)
    for m in messages.iter_mut().filter(|m| m.purpose == Some(Purpose::ConfirmRequest)) {
        m.text = hide_keys(&m.text, "?k=", |c| c.is_ascii_alphanumeric()).into_owned();
    }
    // Likewise an official's action links: each acts in that official's name. They are in
    // the mails to the OPD and in whatever quotes those mails (an official's reply).
    for m in &mut messages {
        if let Cow::Owned(text) = hide_tokens(&m.text) {
            m.text = text;
        }
    }

    let rows = c.fetch_all(
        "SELECT at, actor, kind, from_value, to_value, note FROM events WHERE ticket_id = $1 ORDER BY id", args![t.id])
    .await?;
    // Creation is the ticket row itself (`created_at`); the log shows it first.
    let created = EventView {
        at: t.summary.created_at,
        actor: Actor::System,
        kind: EventKind::Created,
        from: None,
        to: Some(Status::New.as_str().to_owned()),
        note: None,
    };
    let events = std::iter::once(Ok(created))
        .chain(rows.iter().map(|row| {
            Ok(EventView {
                at: row.get("at")?,
                actor: parse(&row.get::<String>("actor")?, "actor")?,
                kind: parse(&row.get::<String>("kind")?, "event kind")?,
                from: row.get("from_value")?,
                to: row.get("to_value")?,
                note: row.get("note")?,
            })
        }))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(TicketView {
        summary: t.summary,
        reporter,
        messages,
        events,
        incident: None,
        incident_suggestions: Vec::new(),
        resident: None,
    }))
}

/// A `WHERE` clause built from the filters that are set, with its parameters numbered in
/// order.
#[derive(Default)]
struct Conditions {
    sql: String,
    params: Params,
}

impl Conditions {
    fn and(&mut self, cond: &str) {
        self.sql.push_str(if self.sql.is_empty() { "WHERE " } else { " AND " });
        self.sql.push_str(cond);
    }
}

/// The ticket list, newest first, paged by a keyset cursor (`t.id < cursor`).
///
/// The statement holds only the filters that are set, so each combination is its own
/// prepared statement with its own plan: a filter meets the `(column, id)` index that
/// serves it (migrations 0001 and 0009), walked backwards from the cursor, and a page reads
/// about `limit` index entries whatever the table's size. The overdue filter repeats the
/// `tickets_open` partial index's condition word for word (SQLite uses a partial index only
/// then). A `q` that is a ticket code looks that code up; any other `q` goes to
/// [`search_tickets`].
pub(crate) async fn list_tickets<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    now: DateTime<Utc>,
    stats: &WordStats,
) -> Result<Page<TicketSummary>> {
    let limit = f.limit.clamp(1, 500);
    if text_query(f).is_some() {
        return search_tickets(c, f, limit, now, stats).await;
    }
    let (sql, params) = list_sql::<D>(f, limit, now);
    let rows = c.fetch_all(&sql, params).await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last_id = None;
    for row in rows.iter().take(limit as usize) {
        let t = ticket_row(row, now)?;
        last_id = Some(t.id);
        items.push(t.summary);
    }
    let next_cursor = if rows.len() as i64 > limit {
        last_id.map(|id| Cursor(id, None).to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// The statement of [`list_tickets`] and its parameters; it asks for `limit + 1` rows to
/// know whether there is a next page.
fn list_sql<D: Db>(f: &TicketFilter, limit: i64, now: DateTime<Utc>) -> (String, Vec<Value>) {
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut w = Conditions::default();
    filter_conditions(&mut w, f, now);
    if let Some(cursor) = f.cursor {
        let p = w.params.bind(cursor.0);
        w.and(&format!("t.id < {p}"));
    }
    if let Some(q) = q {
        // Text is searched by `search_tickets` (full-text index), not here.
        if let Ok(code) = q.parse::<TicketCode>() {
            let p = w.params.bind(code.to_string());
            w.and(&format!("t.code = {p}"));
        }
    }
    let p = w.params.bind(limit + 1);
    // SQLite plans without statistics (the daemon never runs ANALYZE) and would rather
    // look the open statuses up in `tickets_status` and sort them all; the overdue list
    // alone walks `tickets_open` newest first instead. With a column filter, that
    // column's index is the better walk and SQLite picks it.
    let overdue_alone = f.overdue == Some(true)
        && f.status.is_none()
        && f.opd.is_none()
        && f.channel.is_none()
        && f.category.is_none()
        && f.confidential.is_none()
        && f.assignee.is_none()
        && q.is_none();
    let select = if overdue_alone && !D::IS_PG { &*OPEN_SELECT } else { TICKET_SELECT };
    (format!("{select}{} ORDER BY t.id DESC LIMIT {p}", w.sql), w.params.0)
}

/// The filters of the list other than the cursor and `q` (status, OPD, channel, category,
/// confidential, overdue), added to `w`; the text search uses them too.
fn filter_conditions(w: &mut Conditions, f: &TicketFilter, now: DateTime<Utc>) {
    if let Some(s) = f.status {
        let p = w.params.bind(s.as_str());
        w.and(&format!("t.status = {p}"));
    }
    if let Some(o) = f.opd.as_deref() {
        let p = w.params.bind(o);
        w.and(&format!("t.opd = {p}"));
    }
    if let Some(ch) = f.channel {
        let p = w.params.bind(ch.as_str());
        w.and(&format!("t.channel = {p}"));
    }
    if let Some(cat) = f.category.as_deref() {
        let p = w.params.bind(cat);
        w.and(&format!("t.category = {p}"));
    }
    if let Some(confidential) = f.confidential {
        let p = w.params.bind(true);
        let cond = format!(
            "EXISTS (SELECT 1 FROM reporters r WHERE r.id = t.reporter_id AND r.confidential = {p})"
        );
        w.and(&if confidential { cond } else { format!("NOT {cond}") });
    }
    if let Some(a) = f.assignee.as_deref() {
        let p = w.params.bind(a);
        w.and(&format!("t.assignee = {p}"));
    }
    if let Some(overdue) = f.overdue {
        let p = w.params.bind(now);
        let cond = overdue_sql!().replace("$1", &p);
        w.and(&if overdue { cond } else { format!("NOT {cond}") });
    }
}

/// The plan of the ticket list for `f` (the benchmark prints it).
pub(crate) async fn explain_list<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    now: DateTime<Utc>,
    stats: &WordStats,
) -> Result<Vec<String>> {
    if text_query(f).is_some() {
        let (sql, params) = search_statement(c, f, f.limit.clamp(1, 500), now, stats).await?;
        return explain(c, &sql, params).await;
    }
    let (sql, params) = list_sql::<D>(f, f.limit.clamp(1, 500), now);
    explain(c, &sql, params).await
}

impl Store {
    pub async fn ticket(&self, code: TicketCode) -> Result<Option<TicketView>> {
        let now = now();
        let policy = self.inner.opts.incidents.clone();
        read!(self, |c| async move {
            let mut view = ticket_view(c, code, now).await?;
            if let Some(v) = view.as_mut() {
                super::incidents::fill_view(c, &policy, v, now).await?;
                super::incidents::fill_resident(c, v).await?;
            }
            Ok(view)
        })
    }

    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Page<TicketSummary>> {
        let now = now();
        let filter = filter.clone();
        let stats = self.inner.word_stats.clone();
        read!(self, |c| list_tickets(c, &filter, now, &stats))
    }

    /// The database's plan for [`Store::tickets`] with `filter` (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL), one line per step: `cargo xtask bench` prints it.
    pub async fn explain_tickets(&self, filter: &TicketFilter) -> Result<Vec<String>> {
        let now = now();
        let filter = filter.clone();
        let stats = self.inner.word_stats.clone();
        read!(self, |c| explain_list(c, &filter, now, &stats))
    }
}

// --- robust: status answer ---

/// The ticket `code` names, or the one it was merged into (through `follow_merges`), in
/// one read: what a "CEK" answer is about. `None` when no ticket has that code.
pub(crate) async fn live_summary<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<TicketSummary>> {
    let Some(t) = load_ticket(c, code, now).await? else { return Ok(None) };
    Ok(Some(super::common::follow_merges(c, t, now).await?.summary))
}

// --- inbox: live inbox ---
//
// The version of what the inbox shows (issue 19.3): the sum of the newest ticket, message
// and event ids. A new ticket (its row records its own creation, no event), a message, and
// every change a list row shows (status, OPD, handler: each writes an event) raise one of
// them, so a client that has version `v` has seen every change up to it. Three primary-key
// lookups; the same on every instance over one database.

pub(crate) async fn inbox_version<D: Db>(c: &mut D) -> Result<i64> {
    c.fetch_one_scalar(
        "SELECT CAST((SELECT COALESCE(MAX(id), 0) FROM events) \
         + (SELECT COALESCE(MAX(id), 0) FROM tickets) \
         + (SELECT COALESCE(MAX(id), 0) FROM messages) AS BIGINT)",
        args![],
    )
    .await
}

impl Store {
    /// A number that grows whenever a ticket in any list is added or changes.
    pub async fn inbox_version(&self) -> Result<i64> {
        read!(self, |c| inbox_version(c))
    }
}

// --- search: full-text search ---

/// Most index documents a text query may match and still be ranked (see the module doc):
/// beyond it the matches are listed newest first.
pub(crate) const RANK_CAP: i64 = 1000;

/// Most words of a query that are searched; the rest are ignored.
const MAX_TERMS: usize = 12;

/// The words of a text query as both indexes cut them: runs of letters and digits,
/// lower-cased, each at most 64 characters. Everything else (quotes, `*`, `:`, `-`,
/// parentheses, FTS operators spelt as punctuation) separates words and means nothing.
pub(crate) fn search_terms(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(MAX_TERMS)
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .collect()
}

/// Whether the last word is searched as a prefix: when it has two characters or more and
/// the query does not end with a space (the operator is still typing it).
fn last_is_prefix(q: &str, terms: &[String]) -> bool {
    !q.ends_with(char::is_whitespace) && terms.last().is_some_and(|t| t.chars().count() >= 2)
}

/// The FTS5 query for `terms`: every word a quoted string (so `NEAR`, `OR`, `AND` or
/// `NOT` are words like any other), all of them required, the last one a prefix.
pub(crate) fn fts5_query(terms: &[String], prefix: bool) -> String {
    let mut out = String::new();
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        out.push_str(&t.replace('"', "\"\""));
        out.push('"');
        if prefix && i + 1 == terms.len() {
            out.push_str(" *");
        }
    }
    out
}

/// The `to_tsquery` text for `terms`: every word quoted, all of them required (`&`), the
/// last one a prefix (`:*`). The words hold only letters and digits.
pub(crate) fn tsquery(terms: &[String], prefix: bool) -> String {
    let mut out = String::new();
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            out.push_str(" & ");
        }
        out.push('\'');
        out.push_str(&t.replace('\'', "''"));
        out.push('\'');
        if prefix && i + 1 == terms.len() {
            out.push_str(":*");
        }
    }
    out
}

/// A text query: `q` set, not empty and not a ticket code.
fn text_query(f: &TicketFilter) -> Option<&str> {
    f.q.as_deref().map(str::trim).filter(|q| !q.is_empty() && q.parse::<TicketCode>().is_err())
}

/// A query that is a phone number (digits and `+ -.()` with at least eight digits), in
/// E.164.
fn phone_query(q: &str) -> Option<String> {
    let digits = q.chars().filter(char::is_ascii_digit).count();
    if digits < 8 {
        return None;
    }
    aduan_core::normalize_phone(q).ok()
}

/// How a text query is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum SearchMode {
    /// A phone number: its reporter's tickets, newest first.
    Phone,
    /// At most [`RANK_CAP`] documents match: best score first, then newest.
    Ranked,
    /// More match: newest first.
    Newest,
    /// No word to search.
    Nothing,
    /// More than [`RANK_CAP`] match but the statistics do not call the query common
    /// (PostgreSQL): newest first, from the GIN index's matches (see [`pg_capped_mode`]).
    NewestIndexed,
    /// PostgreSQL, a first page not common by the statistics: its GIN matches read once
    /// and counted (`search_matches`), ranked when at most [`RANK_CAP`] match, newest first
    /// when more do (see [`pg_capped_mode`]).
    RankedCapped,
}

/// Chooses how to answer `f`'s text query. A cursor keeps the mode of the page it came
/// from (a ranked page's cursor carries a score), so paging never switches mode.
/// Also returns which words are common (SQLite, see [`common_words`]; empty on PostgreSQL).
async fn search_mode<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    q: &str,
    stats: &WordStats,
) -> Result<(SearchMode, Vec<bool>)> {
    if phone_query(q).is_some() {
        return Ok((SearchMode::Phone, Vec::new()));
    }
    let terms = search_terms(q);
    if terms.is_empty() {
        return Ok((SearchMode::Nothing, Vec::new()));
    }
    let common = if D::IS_PG { Vec::new() } else { common_words(c, &terms).await? };
    if f.cursor.is_some_and(|cursor| cursor.1.is_some()) {
        return Ok((SearchMode::Ranked, common));
    }
    let prefix = search_prefix(f, &terms, &common);
    Ok((count_mode(c, &terms, prefix, f.cursor.is_some(), stats).await?, common))
}

/// The statement answering `f`'s text query and its parameters (`limit + 1` rows). The
/// ranked statements select the score as `search_score` (lower is better on both engines:
/// SQLite's bm25 is negative, PostgreSQL's `ts_rank` is negated).
fn search_sql<D: Db>(
    f: &TicketFilter,
    q: &str,
    (mode, common): (SearchMode, &[bool]),
    limit: i64,
    now: DateTime<Utc>,
) -> (String, Vec<Value>) {
    let terms = search_terms(q);
    let prefix = search_prefix(f, &terms, common);
    let mut w = Conditions::default();
    let mut score = None;
    let (select, order) = match mode {
        SearchMode::Nothing => {
            w.and("1 = 0");
            (TICKET_SELECT.to_owned(), "t.id DESC")
        }
        SearchMode::Phone => {
            let phone = phone_query(q).unwrap_or_default();
            let wa = phone.trim_start_matches('+').to_owned();
            let (p, pw) = (w.params.bind(phone), w.params.bind(wa));
            w.and(&format!(
                "t.reporter_id IN (SELECT i.reporter_id FROM identities i WHERE \
                 (i.kind = 'phone' AND i.value = {p}) OR (i.kind = 'whatsapp' AND i.value = {pw}))"
            ));
            (TICKET_SELECT.to_owned(), "t.id DESC")
        }
        SearchMode::Newest if D::IS_PG => {
            let p = w.params.bind(tsquery(&terms, prefix));
            // `ts_match_vq` is `@@` that no index serves: the walk goes newest first
            // through the tickets and tests each document (see `pg_common`).
            w.and(&format!(
                "EXISTS (SELECT 1 FROM ticket_search s WHERE s.ticket_id = t.id \
                 AND ts_match_vq(s.doc, aduan_tsq({p})))"
            ));
            (TICKET_SELECT.to_owned(), "t.id DESC")
        }
        SearchMode::Newest => {
            // The index is the outer loop, walked from the newest ticket down (FTS5 gives
            // rowids in descending order itself): a page stops after `limit` hits.
            let p = w.params.bind(fts5_query(&terms, prefix));
            w.and(&format!("ticket_search MATCH {p}"));
            let from = "FROM ticket_search CROSS JOIN tickets t ON t.id = ticket_search.rowid ";
            (TICKET_SELECT.replace("FROM tickets t ", from), "ticket_search.rowid DESC")
        }
        SearchMode::NewestIndexed => {
            // The GIN matches (a few thousand at most) sorted by id, then looked up in
            // that order until the page is full (see `PG_LOOKUP`).
            let p = w.params.bind(tsquery(&terms, prefix));
            let lookup = pg_lookup(&mut w, f);
            let from = format!(
                "FROM (SELECT ticket_id FROM ticket_search WHERE doc @@ aduan_tsq({p}) \
                 ORDER BY ticket_id DESC) s {lookup}"
            );
            (TICKET_SELECT.replace("FROM tickets t ", &from), "s.ticket_id DESC")
        }
        SearchMode::Ranked | SearchMode::RankedCapped if D::IS_PG => {
            let p = w.params.bind(tsquery(&terms, prefix));
            let scored = format!(
                "SELECT ticket_id, (-ts_rank(doc, aduan_tsq({p})))::float8 AS search_score \
                 FROM ticket_search WHERE doc @@ aduan_tsq({p})"
            );
            // Capped: the matches are read once and counted (up to `PG_MATCHES_READ`); at
            // most the cap are ranked, more are listed newest first by the same statement
            // (every score 0), so no match is read twice (see `pg_capped_matches`).
            let (matches, cols) = match mode {
                SearchMode::RankedCapped => (
                    pg_capped_matches(&p),
                    "s.search_score AS search_score, s.search_matches AS search_matches, ",
                ),
                _ => (scored, "s.search_score AS search_score, "),
            };
            // The matches (the GIN index) scored and sorted first, then each looks its
            // ticket up in that order until the page is full: `OFFSET 0` keeps a generic
            // plan, which guesses thousands of matches, from hashing the whole tickets
            // table instead (see `PG_LOOKUP`).
            let lookup = pg_lookup(&mut w, f);
            let from = format!("FROM ({matches} ORDER BY search_score, ticket_id DESC) s {lookup}");
            let select = TICKET_SELECT
                .replacen("SELECT ", &format!("SELECT {cols}"), 1)
                .replace("FROM tickets t ", &from);
            score = Some("s.search_score".to_owned());
            (select, "s.search_score, s.ticket_id DESC")
        }
        // (`RankedCapped` is PostgreSQL's.)
        SearchMode::Ranked | SearchMode::RankedCapped => {
            let scored = scored_words(&terms, common);
            let p = w.params.bind(fts5_query(scored.as_deref().unwrap_or(&terms), prefix));
            w.and(&format!("ticket_search MATCH {p}"));
            if scored.is_some() {
                // Scored on the rare words only; every word still has to match (see
                // `scored_words`). `+` keeps the list a filter, not an FTS5 rowid lookup.
                let all = w.params.bind(fts5_query(&terms, prefix));
                w.and(&format!(
                    "+ticket_search.rowid IN (SELECT rowid FROM ticket_search \
                     WHERE ticket_search MATCH {all})"
                ));
            }
            let from = "FROM ticket_search CROSS JOIN tickets t ON t.id = ticket_search.rowid ";
            let select = TICKET_SELECT
                .replacen("SELECT ", &format!("SELECT {FTS5_SCORE} AS search_score, "), 1)
                .replace("FROM tickets t ", from);
            score = Some(FTS5_SCORE.to_owned());
            (select, "search_score, t.id DESC")
        }
    };
    filter_conditions(&mut w, f, now);
    // PostgreSQL's GIN matches are paged on their own id, so the bound goes down into them.
    let pg_matches = D::IS_PG
        && matches!(
            mode,
            SearchMode::Ranked | SearchMode::NewestIndexed | SearchMode::RankedCapped
        );
    let tid = if pg_matches { "s.ticket_id" } else { "t.id" };
    if let Some(cursor) = f.cursor {
        let id = w.params.bind(cursor.0);
        match (&score, cursor.1) {
            (Some(expr), Some(bits)) => {
                let at = w.params.bind(f64::from_bits(bits));
                w.and(&format!("({expr} > {at} OR ({expr} = {at} AND {tid} < {id}))"));
            }
            // FTS5 starts its walk at the cursor when the bound is on its own rowid.
            _ if mode == SearchMode::Newest && !D::IS_PG => {
                w.and(&format!("ticket_search.rowid < {id}"));
            }
            _ => w.and(&format!("{tid} < {id}")),
        }
    }
    let p = w.params.bind(limit + 1);
    (format!("{select}{} ORDER BY {order} LIMIT {p}", w.sql), w.params.0)
}

/// The bm25 score of an FTS5 match: the code counts ten times a word of the messages, the
/// place and the reporter's name five times.
const FTS5_SCORE: &str = "bm25(ticket_search, 10.0, 5.0, 5.0, 1.0)";

/// The search statement for `f` after choosing its mode (for `EXPLAIN`).
async fn search_statement<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    limit: i64,
    now: DateTime<Utc>,
    stats: &WordStats,
) -> Result<(String, Vec<Value>)> {
    let q = text_query(f).unwrap_or_default();
    let (mode, common) = search_mode(c, f, q, stats).await?;
    Ok(search_sql::<D>(f, q, (mode, &common), limit, now))
}

/// The ticket list for a text query (see the module doc): ranked by relevance when few
/// documents match, newest first when many do; the filters and the cursor apply as to the
/// list. The next page's cursor is the last ticket's (score, id) when ranked.
pub(crate) async fn search_tickets<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    limit: i64,
    now: DateTime<Utc>,
    stats: &WordStats,
) -> Result<Page<TicketSummary>> {
    let q = text_query(f).unwrap_or_default();
    let (mut mode, common) = search_mode(c, f, q, stats).await?;
    let (sql, params) = search_sql::<D>(f, q, (mode, &common), limit, now);
    let mut rows = c.fetch_all(&sql, params).await?;
    if mode == SearchMode::RankedCapped {
        // The statement counted its matches (before the filters): see `pg_capped_mode`.
        let terms = search_terms(q);
        let again;
        (mode, again) = pg_capped_mode(c, &terms, search_prefix(f, &terms, &common), &rows).await?;
        if again {
            let (sql, params) = search_sql::<D>(f, q, (mode, &common), limit, now);
            rows = c.fetch_all(&sql, params).await?;
        }
    }
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        let t = ticket_row(row, now)?;
        let score = match mode {
            SearchMode::Ranked => Some(row.get::<f64>("search_score")?.to_bits()),
            _ => None,
        };
        last = Some(Cursor(t.id, score));
        items.push(t.summary);
    }
    let next_cursor = if rows.len() as i64 > limit { last.map(|c| c.to_string()) } else { None };
    Ok(Page { items, next_cursor })
}

// --- pgsearch: search at scale ---

/// An estimated match count above which a PostgreSQL query is listed newest first without
/// counting its matches (see [`pg_common`]).
const NEWEST_ESTIMATE: f64 = 5.0 * RANK_CAP as f64;

/// PostgreSQL's own estimate of how many documents match every word of `$1` (words
/// separated by one space; word number `$2` is a prefix, 0 when none): the table's row
/// count times, for each word, the frequency `ANALYZE` found for it (summed over the
/// lexemes it is a prefix of) in `pg_stats.most_common_elems` of `ticket_search.doc`, the
/// words taken as independent. A word not in that list (rarer than about one document in a
/// hundred) counts as matching nothing, so the query is counted. Reads the statistics
/// only: no posting list.
const PG_ESTIMATE: &str = "SELECT ((SELECT greatest(c.reltuples, 0) FROM pg_class c \
     WHERE c.oid = 'ticket_search'::regclass)::float8 \
     * coalesce((SELECT exp(sum(ln(least(greatest(x.f::float8, 1e-12::float8), 1.0::float8)))) \
     FROM (SELECT sum(e.freq) AS f FROM unnest(string_to_array(aduan_fold($1), ' ')) WITH ORDINALITY \
     AS w(term, i) LEFT JOIN (SELECT u.elem, u.freq FROM pg_stats s, \
     unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs) AS u(elem, freq) \
     WHERE s.schemaname = current_schema() AND s.tablename = 'ticket_search' \
     AND s.attname = 'doc') e ON e.elem = w.term \
     OR (w.i = $2 AND starts_with(e.elem, w.term)) GROUP BY w.i) x), 0))::float8";

/// Whether more than [`RANK_CAP`] documents match `terms` (the last one a prefix when
/// `prefix`), SQLite: FTS5 reads an exact word's doclist lazily (a count up to the cap
/// stops after a thousand entries) but a prefix longer than the prefix indexes (2 and 3
/// characters) merges every doclist it expands to before the first row. The typed last
/// word counted as an exact word first: when that already exceeds the cap, so does the
/// prefix (it matches a superset).
///
/// PostgreSQL never asks: [`count_mode`] answers every query there, a common one from the
/// statistics ([`pg_common`]), a first page by the statement that counts its own matches
/// (`RankedCapped`, [`pg_capped_mode`]), a later newest-first page as such.
async fn more_than_cap<D: Db>(c: &mut D, terms: &[String], prefix: bool) -> Result<bool> {
    const COUNT: &str = "SELECT count(*) FROM (SELECT 1 FROM ticket_search \
         WHERE ticket_search MATCH $1 LIMIT $2)";
    if prefix {
        let exact: i64 =
            c.fetch_one_scalar(COUNT, args![fts5_query(terms, false), RANK_CAP + 1]).await?;
        if exact > RANK_CAP {
            return Ok(true);
        }
    }
    let matched: i64 =
        c.fetch_one_scalar(COUNT, args![fts5_query(terms, prefix), RANK_CAP + 1]).await?;
    Ok(matched > RANK_CAP)
}

/// Whether PostgreSQL's statistics estimate more than [`NEWEST_ESTIMATE`] matches (from
/// the statistics kept in `stats` when every word is ASCII, see [`WordStats`]). A GIN scan
/// builds the bitmap of every match before a `LIMIT` can stop it (a quarter of a million
/// entries for "lampu" at a million tickets: 50+ ms), so a query is never counted before
/// the statistics call it rare (or have nothing to say: a new database).
async fn pg_common<D: Db>(
    c: &mut D,
    terms: &[String],
    prefix: bool,
    stats: &WordStats,
) -> Result<bool> {
    if terms.iter().all(|t| t.is_ascii()) {
        return Ok(stats.get(c).await?.estimate(terms, prefix) > NEWEST_ESTIMATE);
    }
    let prefix_at = if prefix { terms.len() as i64 } else { 0 };
    let estimate: f64 = c.fetch_one_scalar(PG_ESTIMATE, args![terms.join(" "), prefix_at]).await?;
    Ok(estimate > NEWEST_ESTIMATE)
}

/// The mode of a text query with words: ranked when at most [`RANK_CAP`] match; else newest
/// first, walked through the tickets when the query is common, from the GIN matches when
/// PostgreSQL's statistics do not call it common (a few thousand matches at most, cheaper
/// than walking the tickets until a page of them turns up: for a word in one document in a
/// thousand, tens of thousands of documents). `newest_page`: a page after a newest-first
/// page (its cursor has no score), which stays newest first.
async fn count_mode<D: Db>(
    c: &mut D,
    terms: &[String],
    prefix: bool,
    newest_page: bool,
    stats: &WordStats,
) -> Result<SearchMode> {
    if D::IS_PG {
        if pg_common(c, terms, prefix, stats).await? {
            return Ok(SearchMode::Newest);
        }
        // A first page's statement counts its own matches (`pg_capped_mode`).
        return Ok(if newest_page { SearchMode::NewestIndexed } else { SearchMode::RankedCapped });
    }
    let more = newest_page || more_than_cap(c, terms, prefix).await?;
    Ok(if more { SearchMode::Newest } else { SearchMode::Ranked })
}

// --- search: the tail at a million tickets ---

/// Which words of a SQLite query are common: each matches more than [`RANK_CAP`] documents
/// as a whole word (counted in FTS5 up to the cap, which reads at most that many entries of
/// the word's doclist: about 0.1 ms a word at a million tickets).
async fn common_words<D: Db>(c: &mut D, terms: &[String]) -> Result<Vec<bool>> {
    let mut common = Vec::with_capacity(terms.len());
    for t in terms {
        let matched: i64 = c
            .fetch_one_scalar(
                "SELECT count(*) FROM (SELECT 1 FROM ticket_search \
                 WHERE ticket_search MATCH $1 LIMIT $2)",
                args![fts5_query(std::slice::from_ref(t), false), RANK_CAP + 1],
            )
            .await?;
        common.push(matched > RANK_CAP);
    }
    Ok(common)
}

/// Whether `f`'s last word is searched as a prefix: while it is being typed
/// ([`last_is_prefix`]), unless every word is common by itself (`common`, SQLite): such a
/// query is listed newest first (or is a rare meeting of common words), its last word was
/// typed in full, and FTS5 would merge the doclists of every word it begins (a quarter of a
/// million entries for "lampu": 10+ ms) before the first row. With a rare word in the
/// query the prefix stays ("kedip lampu" finds "lampunya kedip").
fn search_prefix(f: &TicketFilter, terms: &[String], common: &[bool]) -> bool {
    let all_common = !common.is_empty() && common.iter().all(|c| *c);
    last_is_prefix(f.q.as_deref().unwrap_or_default(), terms) && !all_common
}

/// The words a ranked SQLite query is scored on, when only some of them are common:
/// the rare ones (`None` when all words or none are common: all are scored). bm25 reads
/// the whole doclist of every phrase it scores to count its documents ("jalan" is in four
/// tickets in ten: 30+ ms at a million tickets), and a word in that many documents weighs
/// almost nothing in the score (its inverse document frequency is near zero, or clamped to
/// zero above half the documents), so leaving it out keeps the order and costs a match of
/// the rare words instead.
fn scored_words(terms: &[String], common: &[bool]) -> Option<Vec<String>> {
    let rare: Vec<String> =
        terms.iter().zip(common).filter(|(_, c)| !**c).map(|(t, _)| t.clone()).collect();
    (!rare.is_empty() && rare.len() < terms.len()).then_some(rare)
}

/// How a PostgreSQL search reads its GIN matches (`Ranked`, `NewestIndexed`): the matches
/// alone are scored (ts_rank) or taken by id and sorted, and only then does each look its
/// ticket up (`PG_LOOKUP`), in that order, until the page is full: a page costs the
/// matches' heap rows plus about `limit` ticket lookups (with a filter, `limit / share`),
/// not one lookup per match (1,300 lookups took 10 ms at a million tickets). Cursor bounds
/// are on the matches' own `ticket_id`, so they go down into the matches' scan. Every
/// match costs a heap visit of `ticket_search` (its `ticket_id`, its `doc` for the score),
/// exact words and prefixes alike: see [`pg_capped_mode`].
const PG_LOOKUP: &str =
    "CROSS JOIN LATERAL (SELECT * FROM tickets WHERE id = s.ticket_id OFFSET 0) t ";

/// PostgreSQL: how many documents match `terms` (the last a prefix when `prefix`), counted
/// up to `upto`. Every match is read on the heap (GIN has no index-only scan: a `count(*)`
/// of exact words visits as many heap pages as a prefix's), so this is never run before a
/// statement that reads the same matches.
async fn pg_matches<D: Db>(c: &mut D, terms: &[String], prefix: bool, upto: i64) -> Result<i64> {
    c.fetch_one_scalar(
        "SELECT count(*) FROM (SELECT 1 FROM ticket_search \
         WHERE doc @@ aduan_tsq($1) LIMIT $2) x",
        args![tsquery(terms, prefix), upto],
    )
    .await
}

// --- pgsearch: one read of the matches ---

/// Most GIN matches the counting statement of a PostgreSQL first page (`RankedCapped`)
/// reads: the estimate's bound for "common" ([`NEWEST_ESTIMATE`]) plus one.
const PG_MATCHES_READ: i64 = 5 * RANK_CAP + 1;

/// The matches of a PostgreSQL first page not common by the statistics, read once: at most
/// [`PG_MATCHES_READ`], counted (`search_matches`), scored by `ts_rank` when at most
/// [`RANK_CAP`] match and 0 otherwise, so that the statement's order (score, then newest)
/// is the ranked order or the newest-first one. `p` is the tsquery's placeholder.
fn pg_capped_matches(p: &str) -> String {
    format!(
        "SELECT ticket_id, search_matches, CASE WHEN search_matches > {RANK_CAP} THEN 0::float8 \
         ELSE (-ts_rank(doc, aduan_tsq({p})))::float8 END AS search_score \
         FROM (SELECT ticket_id, doc, count(*) OVER () AS search_matches \
         FROM (SELECT ticket_id, doc FROM ticket_search WHERE doc @@ aduan_tsq({p}) \
         LIMIT {PG_MATCHES_READ}) m) m"
    )
}

/// What a PostgreSQL first page answered by `RankedCapped` (`rows`) turned out to be, and
/// whether it must be asked again in that mode:
///
/// - at most [`RANK_CAP`] matches: `Ranked`, as it is;
/// - more, but fewer than [`PG_MATCHES_READ`]: `NewestIndexed`, as it is (every score was 0,
///   so the page is already newest first);
/// - [`PG_MATCHES_READ`] or more (a query the statistics missed, e.g. a short prefix of
///   many rare words): `Newest`, asked again (the walk through the tickets; the matches
///   read were an arbitrary part of them);
/// - no row passed the filters: the matches are counted up to [`PG_MATCHES_READ`]; fewer
///   means none of them passes (an empty page), more asks the walk.
///
/// Why one statement: every GIN match is a heap visit of `ticket_search` (a random page
/// read; 10-20 µs each from the OS cache on the bench's machine, where the rare-word tail
/// was these reads), exact words as much as prefixes. Counting the exact words first and
/// then ranking, or ranking up to the cap and then reading every match again newest first,
/// read the same pages two or three times per query.
async fn pg_capped_mode<D: Db>(
    c: &mut D,
    terms: &[String],
    prefix: bool,
    rows: &[crate::db::Row],
) -> Result<(SearchMode, bool)> {
    let matched = match rows.first() {
        Some(r) => r.get::<i64>("search_matches")?,
        None => pg_matches(c, terms, prefix, PG_MATCHES_READ).await?,
    };
    Ok(if matched >= PG_MATCHES_READ {
        (SearchMode::Newest, true)
    } else if matched > RANK_CAP {
        (SearchMode::NewestIndexed, false)
    } else {
        (SearchMode::Ranked, false)
    })
}

/// PostgreSQL's word statistics of `ticket_search.doc` (what [`PG_ESTIMATE`] reads: the
/// table's row count and `pg_stats.most_common_elems` with their frequencies), kept per
/// store for [`WORD_STATS_SECS`] so that choosing a search's mode costs no statement: the
/// estimate was a round trip of its own before every search (0.15 ms on the server, more
/// waiting for a busy CPU). The statistics change when `ANALYZE` runs (autovacuum: after a
/// tenth of the table changed), and the estimate only tells a word in thousands of
/// documents from a rare one, so a minute old is as good. A word with a letter beyond
/// ASCII is estimated by [`PG_ESTIMATE`] itself (its folding is `aduan_fold`'s).
#[derive(Default)]
pub(crate) struct WordStats(
    std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<WordFreqs>)>>,
);

/// How long [`WordStats`] keeps what it read.
const WORD_STATS_SECS: u64 = 60;

/// The row count of `ticket_search` and the frequency of each of its most common lexemes.
pub(crate) struct WordFreqs {
    rows: f64,
    freqs: HashMap<String, f64>,
}

impl WordStats {
    /// The statistics, read again when older than [`WORD_STATS_SECS`].
    async fn get<D: Db>(&self, c: &mut D) -> Result<std::sync::Arc<WordFreqs>> {
        let fresh = std::time::Duration::from_secs(WORD_STATS_SECS);
        if let Some((at, freqs)) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && at.elapsed() < fresh
        {
            return Ok(freqs.clone());
        }
        let rows = c
            .fetch_all(
                "SELECT (SELECT greatest(c.reltuples, 0) FROM pg_class c \
                 WHERE c.oid = 'ticket_search'::regclass)::float8 AS n, e.elem, e.freq \
                 FROM (SELECT 1) one LEFT JOIN (SELECT u.elem, u.freq::float8 AS freq \
                 FROM pg_stats s, unnest(s.most_common_elems::text::text[], \
                 s.most_common_elem_freqs) AS u(elem, freq) \
                 WHERE s.schemaname = current_schema() AND s.tablename = 'ticket_search' \
                 AND s.attname = 'doc' AND u.elem IS NOT NULL) e ON true",
                args![],
            )
            .await?;
        let mut freqs = WordFreqs { rows: 0.0, freqs: HashMap::new() };
        for row in &rows {
            freqs.rows = row.get::<Option<f64>>("n")?.unwrap_or(0.0);
            if let (Some(elem), Some(freq)) =
                (row.get::<Option<String>>("elem")?, row.get::<Option<f64>>("freq")?)
            {
                freqs.freqs.insert(elem, freq);
            }
        }
        let freqs = std::sync::Arc::new(freqs);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), freqs.clone()));
        Ok(freqs)
    }
}

impl WordFreqs {
    /// [`PG_ESTIMATE`] computed here: the row count times, for each word, the frequency of
    /// its lexeme (summed over the lexemes it begins when it is the prefix, the last word),
    /// the words taken as independent; a word not in the list counts as matching nothing.
    fn estimate(&self, terms: &[String], prefix: bool) -> f64 {
        let mut share = 1.0_f64;
        for (i, t) in terms.iter().enumerate() {
            let f: f64 = if prefix && i + 1 == terms.len() {
                self.freqs.iter().filter(|(e, _)| e.starts_with(t.as_str())).map(|(_, f)| f).sum()
            } else {
                self.freqs.get(t).copied().unwrap_or(0.0)
            };
            share *= f.clamp(1e-12, 1.0);
        }
        self.rows * share
    }
}

/// PostgreSQL: [`PG_LOOKUP`] for `f`, with the column filters that have a `(column, id)`
/// index (status, OPD, channel, category, assignee) as a probe before the ticket's row:
/// `EXISTS (SELECT 1 FROM tickets x WHERE x.id = s.ticket_id AND x.opd = … )` inside the
/// lookup refers only to the match, so it is a one-time filter of each lookup (custom and
/// generic plans alike), answered by an index-only scan of that index (`tickets_opd`,
/// `tickets_opd_status`, …); the heap row is read only for a match that passes. The
/// filters stay on the ticket too (`filter_conditions`): the probe only spares the heap. A
/// ranked street name within an OPD looked some 420 tickets up at random in the 190 MB
/// heap to keep 51 (438 page reads, half of its 18 ms when cold); with the probe it reads
/// 47 heap pages and the OPD's part of `tickets_opd`, which every search of that OPD
/// shares (866 page reads became 452; 2.8 ms warm, as before). As a semi-join in the outer
/// `WHERE` the generic plan hashed the OPD's whole index part instead (18 ms).
fn pg_lookup(w: &mut Conditions, f: &TicketFilter) -> String {
    let mut probe = String::new();
    let columns = [
        ("status", f.status.map(|s| s.as_str().to_owned())),
        ("opd", f.opd.clone()),
        ("channel", f.channel.map(|c| c.as_str().to_owned())),
        ("category", f.category.clone()),
        ("assignee", f.assignee.clone()),
    ];
    for (column, value) in columns {
        if let Some(v) = value {
            let p = w.params.bind(v);
            probe.push_str(&format!(" AND x.{column} = {p}"));
        }
    }
    if probe.is_empty() {
        return PG_LOOKUP.to_owned();
    }
    format!(
        "CROSS JOIN LATERAL (SELECT * FROM tickets WHERE id = s.ticket_id AND EXISTS \
         (SELECT 1 FROM tickets x WHERE x.id = s.ticket_id{probe}) OFFSET 0) t "
    )
}

#[cfg(test)]
mod word_stats_tests {
    use super::{NEWEST_ESTIMATE, WordFreqs};

    /// The estimate `PG_ESTIMATE` makes, from the kept statistics: a word's frequency, the
    /// prefix summed over the lexemes it begins, words independent, unknown words rare.
    #[test]
    fn the_kept_statistics_estimate_as_pg_estimate_does() {
        let stats = WordFreqs {
            rows: 1_000_000.0,
            freqs: [("lampu", 0.25), ("lampunya", 0.05), ("jalan", 0.4), ("mati", 0.2)]
                .into_iter()
                .map(|(e, f)| (e.to_owned(), f))
                .collect(),
        };
        let terms = |ws: &[&str]| ws.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        let near = |a: f64, b: f64| (a - b).abs() < 1e-3 * b.max(1.0);
        assert!(near(stats.estimate(&terms(&["lampu"]), false), 250_000.0));
        assert!(near(stats.estimate(&terms(&["lampu"]), true), 300_000.0));
        assert!(near(stats.estimate(&terms(&["jalan", "mati"]), false), 80_000.0));
        assert!(near(stats.estimate(&terms(&["lampu", "mat"]), true), 50_000.0));
        assert!(stats.estimate(&terms(&["kedungmakmur"]), true) < NEWEST_ESTIMATE);
        assert!(stats.estimate(&terms(&["jalan", "kedungmakmur"]), false) < 1.0);
        let empty = WordFreqs { rows: 0.0, freqs: Default::default() };
        assert!(empty.estimate(&terms(&["lampu"]), true) < 1.0);
    }
}
