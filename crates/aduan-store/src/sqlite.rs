//! SQLite: one writer thread that group-commits, and a small pool of reader threads.
//!
//! One **writer thread** owns the write connection: callers queue closures, the writer runs
//! each as it arrives in the **open transaction**, and commits it when nothing is waiting
//! and the sync thread is idle. The writer's connection runs `synchronous=NORMAL`: a commit
//! writes its WAL frames without syncing them. A **sync thread** then `fdatasync`s the WAL
//! (one sync for every commit queued meanwhile) and only then answers each caller, so a
//! `201` still means the message is on disk, while the next batch's statements run during
//! that sync instead of after it (issue 22 item 2: before, the writer sat idle for the
//! whole fsync of every batch). The order of acknowledgements is the order of commits: a
//! sync covers every frame written before it, and an answer leaves only after the sync that
//! followed its own commit. A failed sync answers its writes with an error. Checkpoints keep
//! syncing as under `FULL` (`NORMAL` syncs the WAL before a checkpoint copies it and the
//! database before the WAL restarts). A **checkpoint thread** copies the WAL into the
//! database file in the background (`PASSIVE`, ten times a second).
//!
//! Readers may see a commit a few hundred microseconds before it is synced; no caller is
//! told it succeeded before that. Test: `the_next_batch_runs_while_the_last_commit_syncs`.
//!
//! The writer checkpoints itself (copies the short tail, a few ms with the database fsync,
//! during which no commit happens) only while the background found the WAL longer than
//! `WAL_TAIL_FRAMES` (2,048 frames, 8 MiB), at most every 300 ms, and only right after a
//! background pass copied all of it (`WalTail::ready`; the tail is then what was committed
//! during that pass): a writer that never pauses still lets the WAL restart and stay small
//! (a WAL that only grows makes every commit's fdatasync an append, i.e. a journal commit),
//! while at a moderate rate the background keeps up and commits never wait behind a
//! checkpoint. Tests: `the_wal_restarts_under_a_writer_that_never_pauses`,
//! `the_writer_copies_the_wal_tail_right_after_a_background_pass`.
//!
//! **Timings at `debug`** (`RUST_LOG=aduan_store::sqlite=debug`, issue 22 items 2-3): each
//! group commit (writes, µs running them, in the search refresh and in `COMMIT`), each WAL
//! sync, each background checkpoint pass, and every write that ran or waited in the queue
//! over 1 ms, named by the store function that queued it (its closure's type name; no
//! data). That log showed the open-loop tail: the deadline watcher's one write of up to
//! 1,000 `alert_at` updates (~8 ms) and the router's claim loading its tickets (~1 ms) held
//! every intake write queued behind them; both are now short (see `Store::alert_reschedule`,
//! `Store::route_claim`). Later it showed a 10-17 ms `COMMIT` every ~25 commits: FTS5's
//! automerge merging hundreds of pages at once; the writer now merges a bounded step with
//! each commit instead (`MERGE_PAGES`, migration 0033).
//!
//! Reads use a small pool of `query_only` connections on blocking threads. Migrations are
//! applied from `migrations/sqlite` (embedded) with checksums. Statements use `$n`
//! parameters on both backends; SQLite binds them by name.
//!
//! Why rusqlite and not sqlx's SQLite driver: with sqlx every statement crossed to a worker
//! thread and back (~50 µs measured here); an intake write is ~7 statements, which capped
//! durable intake near 2,000 msg/s. The bundled SQLite is built with `HAVE_FDATASYNC` and
//! `SQLITE_DEFAULT_MEMSTATUS=0` (`.cargo/config.toml`).
//!
//! **Where the writer's time goes** (issue 22 item 2; release build, `cargo xtask bench` HTTP
//! phases, a per-statement timer and `perf` on this thread): ~97 µs per intake message, and the
//! writer is the serial part (with 256 clients at ~9,400 msg/s: 74 % on CPU, 18 % runnable but
//! waiting for a core). The statements ~50 µs: `INSERT INTO tickets` 23 (a dozen index entries,
//! the search trigger, a foreign-key check), `INSERT INTO messages` 11, the duplicate and
//! sender lookup 7.6, identity and reporter rows ~8. Per commit (~13 messages) the search
//! refresh ~240 µs and `COMMIT` ~350 µs (its WAL frames: two `pwrite`s per page), i.e. ~19 and
//! ~27 µs per message. Two SQLite costs hide inside those: (1) a statement with a trigger or
//! `RETURNING` and a constraint that may abort runs with a statement journal, a copy of every
//! page it touches (~7.5 µs per message; `INSERT OR FAIL` plus foreign keys off on this
//! connection removed it in a trial, at the price of the safety net, so not kept); (2)
//! `balance_nonroot` swaps sibling page numbers through the pending-byte page (262,145 at 4
//! KiB), which leaves the page cache's highest key far above the file size, so the `COMMIT`
//! after it scans the whole cache hash (3-8 % of this thread; a 4 MiB cache made it ~6 %
//! cheaper per commit, too little to risk at a million tickets). A ratio of 0.30 needs the
//! whole message at ≤ ~46 µs here: not a tuning away.
//!
//! A write that fails *after* changing rows (an I/O error, a bug) rolls back the whole
//! batch: every write of it so far is reported failed, the ones not yet run go to the next
//! batch. Savepoints per write would isolate that case too; they cost a copy of every page
//! each write touches, measured at ~10% of intake, so every query checks before it writes
//! instead.

use std::any::Any;
use std::collections::HashMap;
use std::future::{Future, ready};
use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::sync::mpsc;

use tokio::sync::{Semaphore, oneshot};

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

/// Parameter names as SQLite sees them: `$n` is a named parameter called `$n` whose index is
/// its order of first appearance, so each value is bound by name, not by position.
const PARAM_NAMES: [&str; 24] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16", "$17", "$18", "$19", "$20", "$21", "$22", "$23", "$24",
];

/// Times are stored as fixed-width RFC 3339 UTC text, so text order is time order.
fn time_text(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

thread_local! {
    /// Column names per statement text, so rows don't allocate them again.
    static COLUMNS: std::cell::RefCell<HashMap<Box<str>, Arc<[String]>>> =
        std::cell::RefCell::new(HashMap::new());
}

fn columns_of(sql: &str, stmt: &rusqlite::Statement<'_>) -> Arc<[String]> {
    COLUMNS.with(|cache| {
        if let Some(cols) = cache.borrow().get(sql) {
            return cols.clone();
        }
        let cols: Arc<[String]> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let mut cache = cache.borrow_mut();
        if cache.len() > 512 {
            cache.clear();
        }
        cache.insert(sql.into(), cols.clone());
        cols
    })
}

/// Runs a statement that needs no parameters and returns no rows, from the statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

impl SqliteDb<'_> {
    fn prepare<'s>(&'s self, sql: &str, args: &[Value]) -> Result<rusqlite::CachedStatement<'s>> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        if stmt.parameter_count() != args.len() {
            return Err(StoreError::Internal(format!(
                "statement takes {} parameters, got {}",
                stmt.parameter_count(),
                args.len()
            )));
        }
        for (n, arg) in args.iter().enumerate() {
            let name = PARAM_NAMES
                .get(n)
                .ok_or_else(|| StoreError::Internal("too many parameters".into()))?;
            let i = stmt.parameter_index(name)?.ok_or_else(|| {
                StoreError::Internal(format!("statement has no parameter {name}"))
            })?;
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
        let columns = columns_of(sql, &stmt);
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
            out.push(Row { columns: columns.clone(), values });
        }
        Ok(out)
    }
}

impl Db for SqliteDb<'_> {
    const IS_PG: bool = false;

    fn execute(&mut self, sql: &str, args: Vec<Value>) -> impl Future<Output = Result<u64>> + Send {
        let result = self.prepare(sql, &args).and_then(|mut s| Ok(s.raw_execute()? as u64));
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
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;",
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
    /// The closure's type name (which store function wrote), for the slow-write log.
    name: &'static str,
    queued: std::time::Instant,
    reply: oneshot::Sender<Result<Erased>>,
}

enum Command {
    Write(WriteRequest),
    /// Sent by `close` (and on drop): writes queued before it still commit, then the writer
    /// stops.
    Close,
    /// From the sync thread: this many committed groups are synced and answered.
    Synced(usize),
}

pub(crate) struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Command>,
    /// What the checkpoint thread tells the writer (tests read the writer's tail copies).
    #[cfg(test)]
    wal: Arc<WalTail>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    reader_slots: Arc<Semaphore>,
    /// Writes queued so far (each one job of the writer thread).
    writes: std::sync::atomic::AtomicU64,
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path, opts: &StoreOptions) -> Result<SqliteStore> {
        SqliteStore::open_with(path, opts, Duration::ZERO).await
    }

    /// `open`, with a pause before every WAL sync (tests: a slow disk).
    async fn open_with(
        path: &Path,
        opts: &StoreOptions,
        sync_delay: Duration,
    ) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let owned = path.to_owned();
        let (conn, ckpt_conn) = tokio::task::spawn_blocking(move || {
            let writer = open_connection(&owned, false)?;
            // Checkpoints run on their own thread so the writer never waits for one.
            writer.pragma_update(None, "wal_autocheckpoint", 0)?;
            // The writer's commits write the WAL without syncing it; the sync thread
            // fdatasyncs the WAL before any caller is answered (see the module doc).
            writer.pragma_update(None, "synchronous", "NORMAL")?;
            Ok::<_, StoreError>((writer, open_connection(&owned, false)?))
        })
        .await
        .map_err(|e| StoreError::Sqlite(e.to_string()))??;
        let max_batch = opts.max_batch.max(1);
        let wal_tail = Arc::new(WalTail::default());
        // Unbounded: every queued write has a caller waiting for it, so HTTP concurrency
        // bounds the queue.
        let (tx, rx) = mpsc::channel();
        let seen = wal_tail.clone();
        #[cfg(test)]
        let seen_by_tests = wal_tail.clone();
        let (sync_tx, sync_rx) = mpsc::channel();
        let (wal, to_writer) = (wal_path(path), tx.clone());
        let syncer = std::thread::Builder::new()
            .name("aduan-sqlite-sync".into())
            .spawn(move || sync_loop(&wal, sync_rx, to_writer, sync_delay))?;
        let thread =
            std::thread::Builder::new().name("aduan-sqlite-writer".into()).spawn(move || {
                writer_loop(conn, rx, sync_tx, max_batch, &seen);
                // The sync thread ends once it answered every committed group.
                let _ = syncer.join();
            })?;
        let (stop_ckpt, ckpt_rx) = mpsc::channel();
        let ckpt_thread = std::thread::Builder::new()
            .name("aduan-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(ckpt_conn, ckpt_rx, &wal_tail))?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: tx,
            #[cfg(test)]
            wal: seen_by_tests,
            writer_thread: Mutex::new(Some(thread)),
            checkpointer: Mutex::new(Some((stop_ckpt, ckpt_thread))),
            readers: Arc::new(Mutex::new(Vec::new())),
            reader_slots: Arc::new(Semaphore::new(opts.max_connections.max(1) as usize)),
            writes: std::sync::atomic::AtomicU64::new(0),
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
        self.writes.fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move |db| f(db).map(|v| Box::new(v) as Erased));
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Command::Write(WriteRequest {
                job,
                name: std::any::type_name::<F>(),
                queued: std::time::Instant::now(),
                reply,
            }))
            .map_err(|_| StoreError::Closed)?;
        let value = wait.await.map_err(|_| StoreError::Closed)??;
        value
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Internal("writer returned a value of the wrong type".into()))
    }

    /// How many writes were queued so far (each one job of the writer thread).
    #[cfg(test)]
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Runs a read on a reader connection, on a blocking thread.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteDb<'_>) -> Result<T> + Send + 'static,
    {
        let _slot =
            self.reader_slots.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
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
            let _ = self.writer.send(Command::Close);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        let ckpt = self.checkpointer.lock().ok().and_then(|mut c| c.take());
        if let Some((stop, thread)) = ckpt {
            let _ = stop.send(());
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.reader_slots.close();
        if let Ok(mut readers) = self.readers.lock() {
            readers.clear();
        }
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // The sync thread holds a sender to the writer: stop the writer explicitly.
        let _ = self.writer.send(Command::Close);
    }
}

/// The WAL file of the database at `path` (`<path>-wal`).
fn wal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

/// What the checkpoint thread and the writer share about the WAL.
#[derive(Default)]
struct WalTail {
    /// The last background pass found the WAL longer than `WAL_TAIL_FRAMES` and copied all
    /// of it: only the frames committed since that pass began are left, and the writer may
    /// copy them (set by the checkpoint thread, taken by the writer).
    ready: AtomicBool,
    /// The frames the WAL held, all copied, when that pass ended.
    copied: std::sync::atomic::AtomicI64,
    /// When that pass ended (µs after `epoch`).
    ended_us: std::sync::atomic::AtomicU64,
    epoch: EpochInstant,
    /// The writer's tail copies so far, and the longest time one of them came after the end
    /// of the pass that made it ready (µs): a copy right after a pass is a short one.
    tail_copies: std::sync::atomic::AtomicU64,
    max_tail_age_us: std::sync::atomic::AtomicU64,
    /// Group commits so far, and how many there were when that pass ended.
    commits: std::sync::atomic::AtomicU64,
    commits_at_pass: std::sync::atomic::AtomicU64,
    /// The most commits a tail copy came after the pass that made it ready (tests: it is
    /// the first commit after the pass, whatever the machine's load).
    max_tail_commits: std::sync::atomic::AtomicU64,
}

/// An `Instant` with a `Default` (when the store opened).
struct EpochInstant(std::time::Instant);

impl Default for EpochInstant {
    fn default() -> EpochInstant {
        EpochInstant(std::time::Instant::now())
    }
}

impl WalTail {
    fn now_us(&self) -> u64 {
        self.epoch.0.elapsed().as_micros() as u64
    }
}

/// Copies the WAL into the database file in the background, ten times a second, without
/// blocking the writer or readers (`PASSIVE`). On shutdown the WAL is emptied.
///
/// A background checkpoint alone never catches up with a busy writer (frames keep arriving
/// while it copies), and the WAL only restarts from its beginning once every frame was
/// copied. So when the WAL holds more than `WAL_TAIL_FRAMES` frames, the writer itself, a
/// few times a second, copies the short tail the background left (see `writer_loop`); the
/// WAL then restarts and stays small, and the file never grows into new, zero-filled
/// blocks. At a moderate rate the writer is idle between batches, the background copies
/// everything, the WAL restarts at the next commit and stays short, and commits never wait
/// for a checkpoint.
///
/// The writer's copy holds every commit, so it must be short: a pass that found the WAL
/// long and copied all of it is followed at once by a second pass (which copies what was
/// committed during the first one's database fsync, the bulk of its time), and only then
/// is the writer told (`WalTail::ready`) to copy the rest at its next commit, i.e. the few
/// frames committed during that second pass. Before, the writer copied on its own timer,
/// up to 100 ms of frames after the last pass (thousands of frames, 10-20 ms measured at
/// 2,000 msg/s, the main open-loop latency tail; issue 22 item 3).
fn checkpoint_loop(conn: Connection, stop: mpsc::Receiver<()>, wal: &WalTail) {
    use std::sync::mpsc::RecvTimeoutError;
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(Duration::from_millis(100)) {
        let mut passes = 0;
        let (frames, copied) = loop {
            let t = std::time::Instant::now();
            let (frames, copied) = checkpoint(&conn, "PASSIVE").unwrap_or((0, 0));
            passes += 1;
            tracing::debug!(
                frames,
                copied,
                us = t.elapsed().as_micros() as u64,
                "Background checkpoint pass."
            );
            if passes >= 2 || frames <= WAL_TAIL_FRAMES || copied != frames {
                break (frames, copied);
            }
        };
        let long = frames > WAL_TAIL_FRAMES;
        if long && copied == frames {
            wal.copied.store(copied, Ordering::Relaxed);
            wal.ended_us.store(wal.now_us(), Ordering::Relaxed);
            wal.commits_at_pass.store(wal.commits.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        wal.ready.store(long && copied == frames, Ordering::Release);
    }
    checkpoint(&conn, "TRUNCATE");
}

/// `PRAGMA wal_checkpoint(mode)`: the frames in the WAL and how many of them are copied.
fn checkpoint(conn: &Connection, mode: &str) -> Option<(i64, i64)> {
    let sql = format!("PRAGMA wal_checkpoint({mode})");
    match conn.query_row(&sql, [], |r| Ok((r.get(1)?, r.get(2)?))) {
        Ok(frames) => Some(frames),
        Err(error) => {
            tracing::warn!(%error, mode, "WAL checkpoint failed.");
            None
        }
    }
}

type Replies = Vec<(oneshot::Sender<Result<Erased>>, Result<Erased>)>;

/// A write that ran, or waited in the queue, longer than this (µs) is logged at `debug`.
const SLOW_WRITE_US: u64 = 1000;

/// The writer commits at most once per this time (issue 22 item 3). Each commit writes every
/// page it changed to the WAL (the message, ticket and event rows, their indexes, the search
/// index segment): ~40-80 pages however few messages it holds. At 2,000 msg/s the writer
/// committed every ~1 ms, 2.3 messages and 20 WAL frames per message; spaced by 2 ms, 5.6
/// messages and 12 frames per message, a third of the WAL syncs, and 15% less server CPU
/// at that rate (back-to-back runs with the `debug` timings). A commit after a quiet moment
/// is not delayed; under load a write waits at most this long for its commit.
const MIN_COMMIT_GAP: Duration = Duration::from_millis(2);

/// How often the writer copies the tail of the WAL itself when the WAL is long.
const TAIL_CHECKPOINT_EVERY: Duration = Duration::from_millis(300);

/// A WAL longer than this (in frames of one page: 8 MiB at 4 KiB pages) is one the
/// background checkpoint is not keeping short; the writer then copies its tail itself.
const WAL_TAIL_FRAMES: i64 = 2048;

/// The writer's side of the pipeline: the open transaction and the commits being synced.
struct Pipeline {
    /// A transaction is open (`BEGIN IMMEDIATE` ran) holding the writes of `replies`.
    open: bool,
    /// The answers of the writes run in the open transaction, in order.
    replies: Replies,
    /// Committed groups handed to the sync thread and not yet reported synced.
    syncing: usize,
    /// When the open transaction began.
    began: Option<std::time::Instant>,
}

/// Runs writes as they arrive, in one open transaction, and commits it when the sync thread
/// is idle (or the batch is full); the sync thread fdatasyncs the WAL and only then answers
/// the callers. While one commit is being synced, the next batch's statements already run.
fn writer_loop(
    mut conn: Connection,
    rx: mpsc::Receiver<Command>,
    sync: mpsc::Sender<Replies>,
    max_batch: usize,
    wal: &WalTail,
) {
    let mut p =
        Pipeline { open: false, replies: Vec::with_capacity(max_batch), syncing: 0, began: None };
    let mut closing = false;
    let mut last_checkpoint = std::time::Instant::now();
    let mut last_commit = Instant::now().checked_sub(MIN_COMMIT_GAP).unwrap_or_else(Instant::now);
    loop {
        // With the sync thread idle, a write waiting to join the open transaction joins it,
        // and the transaction commits as soon as none is waiting, but not sooner than
        // `MIN_COMMIT_GAP` after the last commit (writes arriving meanwhile join it). With a
        // sync in flight, writes keep joining until it ends.
        let cmd = if closing {
            None
        } else if p.open && p.syncing == 0 {
            let gap = (last_commit + MIN_COMMIT_GAP).saturating_duration_since(Instant::now());
            match rx.recv_timeout(gap) {
                Ok(cmd) => Some(cmd),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    closing = true;
                    None
                }
            }
        } else {
            match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => {
                    closing = true;
                    None
                }
            }
        };
        match cmd {
            Some(Command::Write(req)) => {
                run_write(&mut conn, &mut p, req);
                if p.open && p.replies.len() < max_batch {
                    continue;
                }
            }
            Some(Command::Synced(groups)) => {
                p.syncing = p.syncing.saturating_sub(groups);
                continue;
            }
            Some(Command::Close) => closing = true,
            None => {}
        }
        if p.open {
            p.open = false;
            let replies = std::mem::replace(&mut p.replies, Vec::with_capacity(max_batch));
            let t0 = std::time::Instant::now();
            last_commit = t0;
            wal.commits.fetch_add(1, Ordering::Relaxed);
            let fts = refresh_search(&conn);
            let t1 = std::time::Instant::now();
            match fts.and_then(|()| run_cached(&conn, "COMMIT")) {
                Ok(()) => {
                    tracing::debug!(
                        n = replies.len(),
                        run_us = p.began.map_or(0, |b| (t0 - b).as_micros() as u64),
                        fts_us = (t1 - t0).as_micros() as u64,
                        commit_us = t1.elapsed().as_micros() as u64,
                        syncing = p.syncing,
                        "Group commit."
                    );
                    p.syncing += 1;
                    if let Err(mpsc::SendError(replies)) = sync.send(replies) {
                        fail_all(replies, "the WAL sync thread is gone");
                    }
                    // The first commit after a pass takes its signal; a signal that comes
                    // too early is dropped (the next pass gives another).
                    if wal.ready.swap(false, Ordering::Acquire)
                        && last_checkpoint.elapsed() >= TAIL_CHECKPOINT_EVERY
                    {
                        copy_tail(&conn, wal);
                        last_checkpoint = std::time::Instant::now();
                    }
                }
                Err(error) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    tracing::error!(%error, failed = replies.len(), "Group commit failed; its writes are reported failed.");
                    fail_all(replies, &format!("group commit rolled back: {error}"));
                }
            }
        }
        if closing {
            break;
        }
    }
}

/// The writer copies the frames the last background pass left (see `checkpoint_loop`), so
/// that the WAL restarts at the next commit.
fn copy_tail(conn: &Connection, wal: &WalTail) {
    let t = std::time::Instant::now();
    let age_us = wal.now_us().saturating_sub(wal.ended_us.load(Ordering::Relaxed));
    let before = wal.copied.load(Ordering::Relaxed);
    let (frames, _) = checkpoint(conn, "PASSIVE").unwrap_or((0, 0));
    wal.tail_copies.fetch_add(1, Ordering::Relaxed);
    wal.max_tail_age_us.fetch_max(age_us, Ordering::Relaxed);
    let commits = wal.commits.load(Ordering::Relaxed);
    let since = commits.saturating_sub(wal.commits_at_pass.load(Ordering::Relaxed));
    wal.max_tail_commits.fetch_max(since, Ordering::Relaxed);
    tracing::debug!(
        us = t.elapsed().as_micros() as u64,
        tail = (frames - before).max(0),
        after_pass_us = age_us,
        "Writer copied the WAL tail."
    );
}

/// Brings the search index up to date with the tickets the open transaction changed
/// (migration 0025: the triggers only note them in `ticket_search_dirty`), in that
/// transaction, just before it commits: one statement for all of them, so FTS5 writes one
/// segment per group commit rather than several per message.
const SEARCH_REFRESH: &str = "INSERT OR REPLACE INTO ticket_search (rowid, code, place, name, body) \
     SELECT d.id, d.code, d.place, d.name, d.body FROM ticket_search_dirty x \
     JOIN ticket_search_docs d ON d.id = x.ticket_id";

/// FTS5 merge work done with each commit that changed the index, in pages (4 KiB) at most
/// (issue 22 item 3).
///
/// FTS5 writes each commit's documents as a new small segment and merges segments of one
/// level into the next. Left to itself (`automerge`) it does that work in bursts: every 64
/// leaf pages written, 64 pages per level of the index at once, inside the `COMMIT` that
/// crossed the mark (10-17 ms at 2,000 msg/s, every ~25 commits: most of the open-loop
/// tail). Migration 0033 turns that off (`automerge = 0`), and each commit here asks for a
/// bounded step instead (`'merge', n`: up to n pages, on the level with the most segments,
/// nothing when no level has 4), about a millisecond at most. The step does not grow with
/// the batch: a budget per document made a slow commit's bigger successor slower still
/// (measured: half a second of 3-18 ms steps after the closed-loop phases). At 2,000 msg/s
/// (~450 commits/s, a few leaf pages each) it keeps ahead of what the commits add; in a
/// closed-loop burst it may fall behind and catches up afterwards; `crisismerge` stays as
/// the backstop. Test: `search_merging_is_a_bounded_step_of_each_commit`.
///
/// Not kept (6 Dec 2026): merging in the writer's idle moments as well, a step in a
/// transaction of its own whenever no write waited and the last step had merged something,
/// so that the merging a burst leaves behind is done before the next load. It did not do
/// that: the bench's open-loop phase still began with a second of heavy merge steps (376 ms
/// of search refresh, one of 12.3 ms). And under load the writer is idle for a moment
/// between most groups: 6,441 such steps in one run, p50 16 µs but p99 2.7 ms and max 7.1
/// ms, each holding back a write that arrived meanwhile. Two runs with it: closed-loop
/// 7,786 / 7,618 and 6,610 / 6,145 msg/s (repeating / new senders), open-loop p99 7.5 / 7.9
/// and 27.1 / 9.5 ms; without it, the same morning: 8,697 / 7,628 and 7,579 / 6,798,
/// open-loop 7.5 / 7.8 and 22.4 / 18.6 ms. Inside this machine's spread either way.
///
/// The step's size, the same morning (three rounds of the HTTP phases, the sizes rotated;
/// open-loop p99 in ms, repeating senders / new senders):
///
/// ```text
/// 32 pages (kept)   24.8 / 19.7    6.8 / 7.5    7.6 / 6.7
/// 8 pages           19.9 / 10.7   17.4 / 7.6   17.3 / 7.6
/// 96 pages           9.4 / 35.6    9.5 / 8.4   21.4 / 17.6
/// ```
/// 8 pages missed the repeating senders' target in every round (why was not traced: maybe
/// steps that fall behind); 96 was no better than 32.
const MERGE_PAGES: i64 = 32;

fn refresh_search(conn: &Connection) -> rusqlite::Result<()> {
    let mut dirty = match conn.prepare_cached("SELECT count(*) FROM ticket_search_dirty") {
        Ok(stmt) => stmt,
        // Not migrated to 0025 yet: no trigger notes anything either.
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.starts_with("no such table") => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    if dirty.query_row([], |r| r.get::<_, i64>(0))? == 0 {
        return Ok(());
    }
    run_cached(conn, SEARCH_REFRESH)?;
    // One bounded step of segment merging ([`MERGE_PAGES`]; FTS5's own is off, 0033).
    conn.prepare_cached("INSERT INTO ticket_search (ticket_search, rank) VALUES ('merge', ?1)")?
        .execute([MERGE_PAGES])?;
    // A ticket that is gone (tickets are never deleted today; a purge would) leaves the index.
    let gone: Vec<i64> = conn
        .prepare_cached(
            "SELECT ticket_id FROM ticket_search_dirty \
             WHERE ticket_id NOT IN (SELECT id FROM tickets)",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in gone {
        conn.prepare_cached("DELETE FROM ticket_search WHERE rowid = ?1")?.execute([id])?;
    }
    run_cached(conn, "DELETE FROM ticket_search_dirty")
}

/// Answers every write of a group with a failure (whatever its own result was).
fn fail_all(replies: Replies, why: &str) {
    for (reply, _) in replies {
        let _ = reply.send(Err(StoreError::Sqlite(why.to_owned())));
    }
}

/// Runs one write in the open transaction (beginning one if none is open).
///
/// A write that fails before changing anything (an unknown ticket, an illegal transition:
/// every query function checks before it writes) is reported to its caller alone and the
/// others commit. A write that fails after changing rows can only be undone with the whole
/// transaction: the writes of the open transaction so far fail with it. (Savepoints per
/// write would isolate that case too, at the price of copying every page each write
/// touches.)
fn run_write(conn: &mut Connection, p: &mut Pipeline, req: WriteRequest) {
    if !p.open {
        if let Err(error) = run_cached(conn, "BEGIN IMMEDIATE") {
            let _ = req.reply.send(Err(error.into()));
            return;
        }
        p.open = true;
        p.began = Some(std::time::Instant::now());
    }
    let before = conn.total_changes();
    let job = req.job;
    let t = std::time::Instant::now();
    let waited = (t - req.queued).as_micros() as u64;
    if waited > SLOW_WRITE_US {
        tracing::debug!(waited, write = req.name, "Write waited for the writer.");
    }
    let result = catch_unwind(AssertUnwindSafe(|| job(&mut SqliteDb { conn: &mut *conn })))
        .unwrap_or_else(|_| Err(StoreError::Internal("a store write panicked".into())));
    let us = t.elapsed().as_micros() as u64;
    if us > SLOW_WRITE_US {
        tracing::debug!(us, write = req.name, "Slow write.");
    }
    let half_done = match &result {
        Err(e) if conn.total_changes() != before => Some(e.to_string()),
        _ => None,
    };
    p.replies.push((req.reply, result));
    if let Some(error) = half_done {
        let _ = conn.execute_batch("ROLLBACK");
        p.open = false;
        let replies = std::mem::take(&mut p.replies);
        tracing::error!(%error, failed = replies.len(), "Group commit rolled back; its writes are reported failed.");
        fail_all(
            replies,
            &format!("group commit rolled back: a write failed after changing rows: {error}"),
        );
    }
}

/// The sync thread: fdatasyncs the WAL once for every committed group waiting (those that
/// queued while the last sync ran share the next one), then answers their callers and tells
/// the writer how many groups are synced. A failed sync answers every write of those groups
/// with an error: nothing is acknowledged that may not be on disk.
fn sync_loop(
    wal: &Path,
    groups: mpsc::Receiver<Replies>,
    writer: mpsc::Sender<Command>,
    delay: Duration,
) {
    let mut file: Option<std::fs::File> = None;
    while let Ok(mut replies) = groups.recv() {
        let mut n = 1;
        while let Ok(more) = groups.try_recv() {
            replies.extend(more);
            n += 1;
        }
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        // The WAL is opened once and checked to still be the file at its path (SQLite only
        // deletes it when its last connection closes, which the writer's never is).
        let current = |f: &std::fs::File| {
            Ok::<_, std::io::Error>(f.metadata()?.ino() == std::fs::metadata(wal)?.ino())
        };
        if !file.as_ref().is_some_and(|f| current(f).unwrap_or(false)) {
            file = std::fs::File::open(wal).ok();
        }
        let t = std::time::Instant::now();
        let synced = match &file {
            Some(f) => f.sync_data(),
            None => Err(std::io::Error::other("the WAL file can't be opened")),
        };
        tracing::debug!(
            groups = n,
            n = replies.len(),
            us = t.elapsed().as_micros() as u64,
            "WAL synced."
        );
        match synced {
            Ok(()) => {
                for (reply, result) in replies {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, failed = replies.len(), "fdatasync of the WAL failed; its writes are reported failed.");
                fail_all(replies, &format!("fdatasync of the WAL failed: {error}"));
                file = None;
            }
        }
        let _ = writer.send(Command::Synced(n));
    }
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
    let known: Vec<_> = MIGRATOR.iter().filter(|m| m.migration_type.is_up_migration()).collect();
    if let Some(v) = applied.keys().find(|v| !known.iter().any(|m| m.version == **v)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s =
            SqliteStore::open(&dir.path().join("t.db"), &StoreOptions::default()).await.unwrap();
        s.migrate().await.unwrap();
        (s, dir)
    }

    /// `writers` tasks writing back to back for `time`, each key padded with `pad` bytes;
    /// the number of writes.
    async fn write_flat_out(s: &Arc<SqliteStore>, writers: u64, time: Duration, pad: usize) -> u64 {
        let end = std::time::Instant::now() + time;
        let pad = "x".repeat(pad);
        let tasks: Vec<_> = (0..writers)
            .map(|t| {
                let (s, pad) = (s.clone(), pad.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while std::time::Instant::now() < end {
                        let key = format!("{t}-{n}-{pad}");
                        s.write(move |db| insert(db, &key)).await.unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        let mut written = 0;
        for t in tasks {
            written += t.await.unwrap();
        }
        written
    }

    fn insert(db: &mut SqliteDb<'_>, key: &str) -> Result<u64> {
        run_now(db.execute(
            "INSERT INTO checkpoints (connector, key, value, updated_at) VALUES ('t', $1, 'v', 'now')",
            vec![Value::from(key)],
        ))
    }

    async fn present(s: &SqliteStore, key: &str) -> bool {
        let key = key.to_owned();
        s.read(move |db| {
            run_now(
                db.fetch_optional(
                    "SELECT 1 FROM checkpoints WHERE key = $1",
                    vec![Value::from(key)],
                ),
            )
        })
        .await
        .unwrap()
        .is_some()
    }

    #[tokio::test]
    async fn a_write_failing_half_way_leaves_no_trace_and_the_writer_goes_on() {
        let (s, _dir) = store().await;
        let r = s
            .write(|db| {
                insert(db, "half")?;
                Err::<(), _>(StoreError::Invalid("refused after writing".into()))
            })
            .await;
        assert!(matches!(r, Err(StoreError::Sqlite(m)) if m.contains("refused after writing")));
        assert!(!present(&s, "half").await);
        s.write(|db| insert(db, "after")).await.unwrap();
        assert!(present(&s, "after").await);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_restarts_under_a_writer_that_never_pauses() {
        // 32 writers back to back for 2.5 s: the writer is never idle, so the background
        // checkpoint alone never copies every frame, and the WAL would never restart (it
        // grew past 200 MB here). The writer's own tail checkpoint lets it restart: each
        // restart writes new salts into the WAL header (bytes 16..24).
        let (s, dir) = store().await;
        let s = Arc::new(s);
        let end = std::time::Instant::now() + Duration::from_millis(2500);
        let blob = "x".repeat(1024);
        let mut tasks = Vec::new();
        for t in 0..32 {
            let (s, blob) = (s.clone(), blob.clone());
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while std::time::Instant::now() < end {
                    let key = format!("{t}-{n}-{blob}");
                    s.write(move |db| insert(db, &key)).await.unwrap();
                    n += 1;
                }
            }));
        }
        let wal = dir.path().join("t.db-wal");
        let mut salts = std::collections::HashSet::new();
        while std::time::Instant::now() < end {
            if let Ok(header) = std::fs::read(&wal).map(|b| b.get(16..24).map(<[u8]>::to_vec))
                && let Some(salt) = header
            {
                salts.insert(salt);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert!(salts.len() >= 4, "the WAL restarted {} times", salts.len().saturating_sub(1));
    }

    #[test]
    fn search_merging_is_a_bounded_step_of_each_commit() {
        // 4,000 commits of one new ticket with its message, each checkpointed right away, so
        // the WAL holds exactly that commit's pages. With FTS5's automerge, every ~25 commits
        // one wrote hundreds of pages of merged segments (a 10-17 ms COMMIT under load);
        // with a bounded merge step in every commit, none writes much more than the step.
        let dir = tempfile::tempdir().unwrap();
        let mut conn = open_connection(&dir.path().join("t.db"), false).unwrap();
        migrate(&mut conn).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let (mut pages, mut total) = (Vec::new(), 0);
        for n in 0..4000 {
            conn.execute_batch("BEGIN IMMEDIATE").unwrap();
            conn.execute(
                "INSERT INTO tickets (code, status, channel, created_at, updated_at, \
                 last_message_at, first_response_due_at, route_pending) \
                 VALUES (?1, 'new', 'web', '2026-12-05T00:00:00.000Z', \
                 '2026-12-05T00:00:00.000Z', '2026-12-05T00:00:00.000Z', \
                 '2026-12-06T00:00:00.000Z', 1)",
                [format!("ADU-{n:08}")],
            )
            .unwrap();
            let text = format!(
                "Jalan berlubang di dusun {n}, kata{} kata{} kata{} mohon diperbaiki",
                n % 97,
                n % 389,
                n * 7 % 1013
            );
            conn.execute(
                "INSERT INTO messages (ticket_id, direction, channel, provider_id, text, \
                 automated, sent_at, stored_at) \
                 VALUES (last_insert_rowid(), 'in', 'web', ?1, ?2, 0, \
                 '2026-12-05T00:00:00.000Z', '2026-12-05T00:00:00.000Z')",
                [format!("p{n}"), text],
            )
            .unwrap();
            refresh_search(&conn).unwrap();
            conn.execute_batch("COMMIT").unwrap();
            let (frames, copied) = checkpoint(&conn, "PASSIVE").unwrap();
            assert_eq!(frames, copied, "nothing else holds the WAL");
            total += frames;
            if n >= 200 {
                pages.push(frames);
            }
        }
        pages.sort_unstable();
        let (median, most) = (pages[pages.len() / 2], pages[pages.len() - 1]);
        assert!(
            most <= median + MERGE_PAGES * 2,
            "a commit wrote {most} pages (median {median}, {total} in all)"
        );
        // The steps keep up: the index answers from a handful of segments.
        let segments: i64 = conn
            .query_row("SELECT count(DISTINCT segid) FROM ticket_search_idx", [], |r| r.get(0))
            .unwrap();
        assert!(segments <= 16, "the index has {segments} segments");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_writer_copies_the_wal_tail_right_after_a_background_pass() {
        // A writer that never pauses: the writer copies the WAL's tail itself, holding every
        // commit meanwhile. It does so at its first commit after a background pass copied
        // the rest, when the tail is only what was committed during that pass; on its own
        // timer (before) it came up to 100 ms after the last pass, with 100 ms of frames to
        // copy (10-20 ms of stalled intake at 2,000 msg/s).
        let (s, _dir) = store().await;
        let s = Arc::new(s);
        write_flat_out(&s, 32, Duration::from_millis(3000), 1024).await;
        // Counted in commits, not milliseconds: on a loaded machine one commit and its sync
        // can take 50 ms, but the copy still comes at the first commit after the pass.
        let copies = s.wal.tail_copies.load(Ordering::Relaxed);
        let since = s.wal.max_tail_commits.load(Ordering::Relaxed);
        let age = Duration::from_micros(s.wal.max_tail_age_us.load(Ordering::Relaxed));
        assert!(copies >= 3, "the writer copied the WAL tail {copies} times");
        assert!(
            since <= 1,
            "a tail copy came {since} commits ({age:?}) after the pass that left it \
             ({copies} copies)"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_under_load_are_spaced_and_a_lone_write_is_not_delayed() {
        // 8 writers back to back for 1 s: with a fast sync the writer committed after almost
        // every write (each commit writes ~40 pages to the WAL however few messages it
        // holds); now commits come at most every `MIN_COMMIT_GAP`, with more writes each.
        let (s, _dir) = store().await;
        let s = Arc::new(s);
        let t0 = std::time::Instant::now();
        let written = write_flat_out(&s, 8, Duration::from_millis(1000), 0).await;
        let commits = s.wal.commits.load(Ordering::Relaxed);
        let most = t0.elapsed().as_micros() / MIN_COMMIT_GAP.as_micros() + 2;
        assert!(
            u128::from(commits) <= most,
            "{commits} commits for {written} writes in {:?}",
            t0.elapsed()
        );
        assert!(written >= 2 * commits, "{written} writes in {commits} commits");
        // After a quiet moment a write commits at once: the gap counts from the last commit
        // (the fastest of ten lone writes, so a busy machine's scheduling doesn't count).
        let mut fastest = Duration::MAX;
        for i in 0..10 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let (before, t) = (s.wal.commits.load(Ordering::Relaxed), std::time::Instant::now());
            let writer = s.clone();
            let waited = tokio::spawn(async move {
                writer.write(move |db| insert(db, &format!("alone-{i}"))).await.unwrap();
            });
            while t.elapsed() < Duration::from_secs(1) {
                if s.wal.commits.load(Ordering::Relaxed) > before {
                    fastest = fastest.min(t.elapsed());
                    break;
                }
                std::thread::yield_now();
            }
            waited.await.unwrap();
        }
        assert!(fastest < MIN_COMMIT_GAP, "a lone write committed after {fastest:?} at best");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_batch_runs_while_the_last_commit_syncs() {
        // Every WAL sync takes 300 ms here (a slow disk). A write queued while the first
        // write's commit is being synced runs at once, in the next transaction, instead of
        // waiting for that sync; and no write is answered before a sync that followed its
        // own commit.
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions::default();
        let slow = Duration::from_millis(300);
        let s =
            Arc::new(SqliteStore::open_with(&dir.path().join("t.db"), &opts, slow).await.unwrap());
        s.migrate().await.unwrap();
        let t0 = std::time::Instant::now();
        let first = {
            let s = s.clone();
            tokio::spawn(async move {
                s.write(|db| insert(db, "first")).await.unwrap();
                t0.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (ran_tx, ran_rx) = std::sync::mpsc::channel();
        let second = {
            let s = s.clone();
            tokio::spawn(async move {
                s.write(move |db| {
                    let _ = ran_tx.send(t0.elapsed());
                    insert(db, "second")
                })
                .await
                .unwrap();
                t0.elapsed()
            })
        };
        let first_answered = first.await.unwrap();
        let second_answered = second.await.unwrap();
        let second_ran = ran_rx.recv().unwrap();
        assert!(first_answered >= slow, "answered before its sync: {first_answered:?}");
        assert!(
            second_ran < first_answered,
            "the second write waited for the first sync: ran at {second_ran:?}, first answered at {first_answered:?}"
        );
        assert!(second_answered >= first_answered + slow - Duration::from_millis(60));
        assert!(present(&s, "first").await && present(&s, "second").await);
        s.close().await;
    }

    #[tokio::test]
    async fn every_answer_of_a_batch_tells_the_truth() {
        // Writes queued together share a batch; one of them fails half-way. Whatever each
        // caller is told must match what the database holds afterwards.
        let (s, _dir) = store().await;
        let s = Arc::new(s);
        let keys: Vec<String> = (0..60).map(|i| format!("k{i}")).collect();
        let mut tasks = Vec::new();
        for (i, key) in keys.iter().cloned().enumerate() {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.write(move |db| {
                    insert(db, &key)?;
                    if i % 20 == 7 {
                        return Err(StoreError::Invalid("half-way".into()));
                    }
                    Ok(())
                })
                .await
            }));
        }
        let mut told_ok = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            told_ok.push((i, t.await.unwrap().is_ok()));
        }
        for (i, ok) in told_ok {
            assert_eq!(present(&s, &keys[i]).await, ok, "write {i}");
            if i % 20 == 7 {
                assert!(!ok);
            }
        }
    }
}
