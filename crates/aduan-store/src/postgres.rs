//! PostgreSQL: one sqlx pool, one transaction per write; intake by group commit.
//!
//! **Group commit** (issue 22 item 4): `Store::ingest` and `Store::ingest_all` don't open a
//! transaction each. They queue on `GROUP_WRITERS` writer tasks; a free writer takes
//! everything queued (up to `max_batch` writes), opens ONE transaction, takes the advisory
//! locks of every message of the group in ONE statement (distinct lock keys in hash order,
//! the same order in every instance, so two groups never deadlock on them), stores the
//! group's messages (`ops::intake::ingest_group`: the new senders' first messages together
//! in one statement, the rest one by one), commits, and only then answers each caller:
//! `201 = committed` holds, and many messages share one commit (one WAL flush), one lock
//! round trip and, for new senders, one statement. While one writer waits for its commit,
//! the next group gathers on the other writer.
//!
//! The multi-instance guarantees are the ones of a transaction per message: the advisory
//! locks on `message:{channel}:{provider id}` and on the sender's identity are held until
//! the group commits, so another instance's group holding the same message or sender waits
//! and then, under READ COMMITTED, sees the committed row (the repeat is a duplicate, the
//! sender's next message joins the ticket). Inside one group, a repeat sees the first
//! delivery's row like any later statement of one transaction.
//!
//! If any write of a group fails (a refused write, a deadlock on ticket rows with another
//! instance, a lost connection), the group is rolled back and each of its writes runs again
//! alone in its own transaction, so every caller gets its own answer and one bad message
//! never fails the others. Test: `two_writers_racing_on_one_database_store_nothing_twice`
//! (contract `intake.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Column, Postgres, Row as _, TypeInfo};

use crate::db::{Db, Row, Value};
use crate::ops::intake::GroupWrite;
use crate::types::Ingested;
use crate::{Result, StoreError, StoreOptions};

pub(crate) struct PgStore {
    pool: PgPool,
    group: tokio::sync::mpsc::UnboundedSender<Grouped>,
    /// Statements the queries ran ([`PgConn`]).
    statements: Arc<AtomicU64>,
}

/// A connection as the queries see it ([`Db`]): a pooled connection or a transaction, and
/// the store's count of the statements run through it (`testing::pg_statements`: tests
/// count round trips, not time). The transaction's `BEGIN`/`COMMIT` and a group's lock
/// statement are not counted.
pub(crate) struct PgConn<'c> {
    conn: &'c mut PgConnection,
    statements: &'c AtomicU64,
}

/// Writer tasks of the group commit: one runs a group while the next gathers.
const GROUP_WRITERS: usize = 2;

/// One caller's intake waiting for a group: its messages (stored all or none), the
/// advisory-lock keys they need (held until the transaction ends), and where the answer goes.
struct Grouped {
    write: GroupWrite,
    locks: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Ingested>>>,
}

type Inbox = Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Grouped>>>;

/// Takes everything queued (up to `max_batch`) while holding the inbox, then runs it as one
/// group; meanwhile the other writer holds the inbox and gathers the next group.
async fn group_writer(pool: PgPool, statements: Arc<AtomicU64>, inbox: Inbox, max_batch: usize) {
    loop {
        let group = {
            let mut rx = inbox.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut group = vec![first];
            while group.len() < max_batch {
                match rx.try_recv() {
                    Ok(g) => group.push(g),
                    Err(_) => break,
                }
            }
            group
        };
        run_group(&pool, &statements, group).await;
    }
}

async fn run_group(pool: &PgPool, statements: &AtomicU64, group: Vec<Grouped>) {
    match try_group(pool, statements, &group).await {
        Ok(values) => {
            for (g, value) in group.into_iter().zip(values) {
                let _ = g.reply.send(Ok(value));
            }
        }
        Err(error) if group.len() == 1 => {
            if let Some(g) = group.into_iter().next() {
                let _ = g.reply.send(Err(error));
            }
        }
        Err(error) => {
            tracing::warn!(%error, writes = group.len(), "A group commit failed; each of its writes runs alone.");
            for g in group {
                let result = try_group(pool, statements, std::slice::from_ref(&g)).await;
                let _ = g.reply.send(result.map(|mut v| v.pop().unwrap_or_default()));
            }
        }
    }
}

/// One transaction: the group's locks in one statement, its messages
/// ([`crate::ops::intake::ingest_group`]), the commit.
async fn try_group(
    pool: &PgPool,
    statements: &AtomicU64,
    group: &[Grouped],
) -> Result<Vec<Vec<Ingested>>> {
    let mut tx = pool.begin().await?;
    let keys: Vec<&str> = group.iter().flat_map(|g| g.locks.iter().map(String::as_str)).collect();
    if !keys.is_empty() {
        // OFFSET 0 keeps the sorted subquery apart, so the locks are taken in hash order.
        sqlx::query(
            "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT hashtextextended(k, 0) AS h \
             FROM unnest($1::text[]) AS k ORDER BY h OFFSET 0) AS sorted",
        )
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
    }
    let writes: Vec<&GroupWrite> = group.iter().map(|g| &g.write).collect();
    let values =
        crate::ops::intake::ingest_group(&mut PgConn { conn: &mut tx, statements }, &writes)
            .await?;
    tx.commit().await?;
    Ok(values)
}

/// The tables intake and the workers read by key, whose statistics the planner needs from a
/// new database's first minutes on.
const GROWING_TABLES: [&str; 6] =
    ["messages", "tickets", "identities", "reporters", "ticket_search", "outbox"];

/// How often [`keep_statistics`] looks.
const STATISTICS_EVERY: Duration = Duration::from_secs(5);

/// Analyses each of [`GROWING_TABLES`] that has grown to at least twice its rows at its last
/// analysis (and by 1,000 rows or more), every [`STATISTICS_EVERY`], until the pool closes.
///
/// Autovacuum analyses a table after 10 % of changes, but looks only once a minute
/// (`autovacuum_naptime`), and sqlx keeps the plans it prepared meanwhile: on a new database
/// under an intake burst, a minute of plans made for tables of a few rows (a bitmap scan of
/// all inbound messages to find one ticket's: 0.8 ms a statement at 10,000 messages in
/// `cargo xtask bench`, growing with the table). Doubling keeps this to a handful of
/// analyses while a table is young (1,000, 2,000, 4,000 … rows) and to none once it is
/// large, where autovacuum's 10 % comes first. ANALYZE invalidates the cached plans.
async fn keep_statistics(pool: PgPool) {
    let mut tick = tokio::time::interval(STATISTICS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        tick.tick().await;
        let grown: Vec<String> = match sqlx::query_scalar(
            "SELECT relname::text FROM pg_stat_user_tables WHERE relname = ANY($1) \
             AND n_mod_since_analyze >= GREATEST(1000, n_live_tup)",
        )
        .bind(&GROWING_TABLES[..])
        .fetch_all(&pool)
        .await
        {
            Ok(tables) => tables,
            Err(error) => {
                tracing::debug!(%error, "Could not read the tables' statistics.");
                continue;
            }
        };
        for table in grown {
            // Only names out of GROWING_TABLES reach the statement.
            if let Some(name) = GROWING_TABLES.iter().find(|t| **t == table) {
                let sql = format!("ANALYZE {name}");
                match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await {
                    Ok(_) => tracing::debug!(table = name, "Analysed a table that doubled."),
                    Err(error) => tracing::debug!(%error, table = name, "ANALYZE failed."),
                }
            }
        }
    }
}

fn bind<'q>(
    mut q: Query<'q, Postgres, PgArguments>,
    args: Vec<Value>,
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        q = match arg {
            Value::Int(v) => q.bind(v),
            Value::Real(v) => q.bind(v),
            Value::Text(v) => q.bind(v),
            Value::Bool(v) => q.bind(v),
            Value::Time(v) => q.bind(v),
        };
    }
    q
}

fn decode(row: &PgRow, columns: &Arc<[String]>) -> Result<Row> {
    let mut values = Vec::with_capacity(columns.len());
    for (i, col) in row.columns().iter().enumerate() {
        values.push(match col.type_info().name() {
            "INT8" => Value::Int(row.try_get(i)?),
            "INT4" => Value::Int(row.try_get::<Option<i32>, _>(i)?.map(i64::from)),
            "INT2" => Value::Int(row.try_get::<Option<i16>, _>(i)?.map(i64::from)),
            "FLOAT8" => Value::Real(row.try_get(i)?),
            "FLOAT4" => Value::Real(row.try_get::<Option<f32>, _>(i)?.map(f64::from)),
            "BOOL" => Value::Bool(row.try_get(i)?),
            "TIMESTAMPTZ" => Value::Time(row.try_get(i)?),
            "VOID" => Value::Text(None),
            _ => Value::Text(row.try_get(i)?),
        });
    }
    Ok(Row { columns: columns.clone(), values })
}

impl Db for PgConn<'_> {
    const IS_PG: bool = true;

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let q = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args);
        Ok(q.execute(&mut *self.conn).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>> {
        self.statements.fetch_add(1, Ordering::Relaxed);
        let q = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args);
        let rows = q.fetch_all(&mut *self.conn).await?;
        let Some(first) = rows.first() else { return Ok(Vec::new()) };
        let columns: Arc<[String]> = first.columns().iter().map(|c| c.name().to_owned()).collect();
        rows.iter().map(|r| decode(r, &columns)).collect()
    }
}

impl PgStore {
    pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let (group, rx) = tokio::sync::mpsc::unbounded_channel();
        let inbox: Inbox = Arc::new(tokio::sync::Mutex::new(rx));
        let statements = Arc::new(AtomicU64::new(0));
        for _ in 0..GROUP_WRITERS {
            let (pool, statements, inbox) = (pool.clone(), statements.clone(), inbox.clone());
            tokio::spawn(group_writer(pool, statements, inbox, opts.max_batch.max(1)));
        }
        tokio::spawn(keep_statistics(pool.clone()));
        Ok(PgStore { pool, group, statements })
    }

    /// How many statements the queries have run on this store ([`PgConn`]).
    #[cfg(feature = "testing")]
    pub(crate) fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Stores `write` in a transaction shared with the other intakes queued meanwhile,
    /// holding the advisory locks `locks` (see the module doc); returns once committed. The
    /// write may run twice: a second time alone if its group failed.
    pub(crate) async fn ingest_grouped(
        &self,
        write: GroupWrite,
        locks: Vec<String>,
    ) -> Result<Vec<Ingested>> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.group.send(Grouped { write, locks, reply }).map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        // The migrator takes an advisory lock, so instances starting together migrate once.
        sqlx::migrate!("../../migrations/postgres").run(&self.pool).await?;
        Ok(())
    }

    /// Runs `f` in its own transaction and commits it.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut PgConn<'c>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let mut tx = self.pool.begin().await?;
        let value = f(&mut PgConn { conn: &mut tx, statements: &self.statements }).await?;
        tx.commit().await?;
        Ok(value)
    }

    /// Runs `f` on a pooled connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut PgConn<'c>) -> BoxFuture<'c, Result<T>>,
    {
        let mut conn = self.pool.acquire().await?;
        f(&mut PgConn { conn: &mut conn, statements: &self.statements }).await
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
