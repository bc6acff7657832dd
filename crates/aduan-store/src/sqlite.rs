//! SQLite: one writer thread that group-commits, and a small pool of reader threads.

use std::any::Any;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::future::{Future, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::db::{Db, Row, Value};
use crate::{Result, StoreError, StoreOptions};

/// The migrations of `migrations/sqlite`, embedded at build time.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                StoreError::Conflict(format!("constraint violated: {e}"))
            }
            _ => StoreError::Sqlite(e.to_string()),
        }
    }
}

/// A connection as the queries see it.
pub(crate) struct SqliteDb<'a> {
    conn: &'a mut Connection,
}

/// `$1` → `?1`: SQLite numbers `$name` parameters by first appearance, `?N` by `N`.
fn numbered_params(sql: &str) -> Cow<'_, str> {
    if sql.contains('$') {
        Cow::Owned(sql.replace('$', "?"))
    } else {
        Cow::Borrowed(sql)
    }
}

/// Times are stored as fixed-width RFC 3339 UTC text, so text order is time order.
fn time_text(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl SqliteDb<'_> {
    fn prepare<'s>(&'s self, sql: &str, args: &[Value]) -> Result<rusqlite::CachedStatement<'s>> {
        let mut stmt = self.conn.prepare_cached(&numbered_params(sql))?;
        for (i, arg) in args.iter().enumerate() {
            let i = i + 1;
            match arg {
                Value::Int(Some(v)) => stmt.raw_bind_parameter(i, v)?,
                Value::Real(Some(v)) => stmt.raw_bind_parameter(i, v)?,
                Value::Text(Some(v)) => stmt.raw_bind_parameter(i, v)?,
                Value::Bool(Some(v)) => stmt.raw_bind_parameter(i, i64::from(*v))?,
                Value::Time(Some(v)) => stmt.raw_bind_parameter(i, time_text(v))?,
                _ => stmt.raw_bind_parameter(i, rusqlite::types::Null)?,
            }
        }
        Ok(stmt)
    }

    fn query(&mut self, sql: &str, args: &[Value]) -> Result<Vec<Row>> {
        let mut stmt = self.prepare(sql, args)?;
        let columns: Arc<[String]> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let n = columns.len();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(n);
            for i in 0..n {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Text(None),
                    ValueRef::Integer(v) => Value::Int(Some(v)),
                    ValueRef::Real(v) => Value::Real(Some(v)),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        Value::Text(Some(String::from_utf8_lossy(t).into_owned()))
                    }
                });
            }
            out.push(Row {
                columns: columns.clone(),
                values,
            });
        }
        Ok(out)
    }
}

impl Db for SqliteDb<'_> {
    const IS_PG: bool = false;

    fn execute(&mut self, sql: &str, args: Vec<Value>) -> impl Future<Output = Result<u64>> + Send {
        let result = self
            .prepare(sql, &args)
            .and_then(|mut s| Ok(s.raw_execute()? as u64));
        ready(result)
    }

    fn fetch_all(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Row>>> + Send {
        ready(self.query(sql, &args))
    }
}

/// Runs a query function on a SQLite connection. The functions are `async` for PostgreSQL's
/// sake; on SQLite every step is ready at once, so polling to completion never waits.
pub(crate) fn run_now<T>(fut: impl Future<Output = Result<T>>) -> Result<T> {
    futures::executor::block_on(fut)
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(128);
    // journal_mode is a property of the file; synchronous and foreign_keys of the connection.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Sqlite(format!(
            "could not switch {} to WAL (got {mode})",
            path.display()
        )));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;",
    )?;
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(conn)
}

type Erased = Box<dyn Any + Send>;
type Job = Box<dyn FnOnce(&mut SqliteDb<'_>) -> Result<Erased> + Send>;

struct WriteRequest {
    job: Job,
    reply: oneshot::Sender<Result<Erased>>,
}

enum Command {
    Write(WriteRequest),
    /// Sent by `close`: writes queued before it still commit, then the writer stops.
    Close,
}

pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Command>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Arc<Semaphore>,
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path, opts: &StoreOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let owned = path.to_owned();
        let conn = tokio::task::spawn_blocking(move || open_connection(&owned, false))
            .await
            .map_err(|e| StoreError::Sqlite(e.to_string()))??;
        let max_batch = opts.max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let thread = std::thread::Builder::new()
            .name("aduan-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, max_batch))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: tx,
            writer_thread: Mutex::new(Some(thread)),
            readers: Arc::new(Mutex::new(Vec::new())),
            reader_slots: Arc::new(Semaphore::new(opts.max_connections.max(1) as usize)),
        })
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || migrate(&mut open_connection(&path, false)?))
            .await
            .map_err(|e| StoreError::Sqlite(e.to_string()))?
    }

    /// Queues a write for the next group commit; returns once that commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteDb<'_>) -> Result<T> + Send + 'static,
    {
        let job: Job = Box::new(move |db| f(db).map(|v| Box::new(v) as Erased));
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Command::Write(WriteRequest { job, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        let value = wait.await.map_err(|_| StoreError::Closed)??;
        value
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Internal("writer returned a value of the wrong type".into()))
    }

    /// Runs a read on a reader connection, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteDb<'_>) -> Result<T> + Send + 'static,
    {
        let _slot = self
            .reader_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = self.readers.lock().map_err(|_| StoreError::Closed)?.pop();
        let path = self.path.clone();
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let mut conn = match pooled {
                Some(c) => c,
                None => open_connection(&path, true)?,
            };
            let result = f(&mut SqliteDb { conn: &mut conn });
            Ok::<_, StoreError>((conn, result))
        })
        .await
        .map_err(|e| StoreError::Sqlite(e.to_string()))??;
        if let Ok(mut readers) = self.readers.lock() {
            readers.push(conn);
        }
        result
    }

    pub(crate) async fn close(&self) {
        let thread = self.writer_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = self.writer.send(Command::Close).await;
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.reader_slots.close();
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

type Replies = Vec<(oneshot::Sender<Result<Erased>>, Result<Erased>)>;

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Command>, max_batch: usize) {
    let mut batch: VecDeque<WriteRequest> = VecDeque::with_capacity(max_batch);
    let mut replies: Replies = Vec::with_capacity(max_batch);
    let mut closing = false;
    while !closing {
        match rx.blocking_recv() {
            Some(Command::Write(req)) => batch.push_back(req),
            Some(Command::Close) | None => break,
        }
        // Everything that queued up while the last commit was syncing joins this one.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(Command::Write(req)) => batch.push_back(req),
                Ok(Command::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        match run_batch(&mut conn, &mut batch, &mut replies) {
            Ok(()) => {
                for (reply, result) in replies.drain(..) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = replies.len() + batch.len(), "Group commit failed; every write in it is reported failed.");
                let _ = conn.execute_batch("ROLLBACK");
                let failed = || Err(StoreError::Sqlite(format!("commit failed: {error}")));
                for (reply, _) in replies.drain(..) {
                    let _ = reply.send(failed());
                }
                for req in batch.drain(..) {
                    let _ = req.reply.send(failed());
                }
            }
        }
    }
}

/// One transaction for the whole batch, each write in its own savepoint: a write that fails
/// is undone alone and reported to its caller while the others commit.
fn run_batch(
    conn: &mut Connection,
    batch: &mut VecDeque<WriteRequest>,
    replies: &mut Replies,
) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    while let Some(req) = batch.pop_front() {
        conn.execute_batch("SAVEPOINT w")?;
        let job = req.job;
        let result = catch_unwind(AssertUnwindSafe(|| job(&mut SqliteDb { conn: &mut *conn })))
            .unwrap_or_else(|_| Err(StoreError::Internal("a store write panicked".into())));
        if result.is_ok() {
            conn.execute_batch("RELEASE w")?;
        } else {
            conn.execute_batch("ROLLBACK TO w; RELEASE w")?;
        }
        replies.push((req.reply, result));
    }
    conn.execute_batch("COMMIT")?;
    Ok(())
}

/// Applies the embedded migrations the database lacks, each in its own transaction, and
/// refuses to run on a database whose applied migrations differ from the embedded ones.
fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS _aduan_migrations (
            version INTEGER PRIMARY KEY, description TEXT NOT NULL,
            checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )?;
    let applied: HashMap<i64, String> = {
        let mut stmt = conn.prepare("SELECT version, checksum FROM _aduan_migrations")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let known: Vec<_> = MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .collect();
    if let Some(v) = applied
        .keys()
        .find(|v| !known.iter().any(|m| m.version == **v))
    {
        return Err(StoreError::Internal(format!(
            "the database has migration {v}, which this aduan does not know: run a newer aduan"
        )));
    }
    for m in known {
        let checksum = hex::encode(&m.checksum);
        match applied.get(&m.version) {
            Some(c) if *c == checksum => continue,
            Some(_) => {
                return Err(StoreError::Internal(format!(
                    "migration {} ({}) was changed after it was applied",
                    m.version, m.description
                )));
            }
            None => {
                let tx = conn.transaction()?;
                tx.execute_batch(m.sql.as_str())?;
                tx.execute(
                    "INSERT INTO _aduan_migrations (version, description, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![m.version, m.description.as_ref(), checksum, time_text(&crate::now())],
                )?;
                tx.commit()?;
                tracing::info!(version = m.version, description = %m.description, "Applied migration.");
            }
        }
    }
    Ok(())
}
