//! SQLite: a read pool plus one writer task that group-commits.

use std::any::Any;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError, StoreOptions};

type Erased = Box<dyn Any + Send>;
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<Erased>> + Send>;

struct WriteRequest {
    job: Job,
    reply: oneshot::Sender<Result<Erased>>,
}

pub(crate) struct SqliteStore {
    path: PathBuf,
    read: SqlitePool,
    writer: mpsc::Sender<Command>,
    writer_task: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

enum Command {
    Write(WriteRequest),
    /// Sent by `close`: writes queued before it still commit, the loop then ends.
    Close,
}

fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10))
        .pragma("temp_store", "memory")
}

impl SqliteStore {
    pub(crate) async fn open(path: &Path, opts: &StoreOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        // The writer connects first so the file exists in WAL mode before readers open it.
        let writer_conn = SqliteConnection::connect_with(&connect_options(path)).await?;
        let read = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .connect_with(connect_options(path).read_only(true))
            .await?;
        let max_batch = opts.max_batch.max(1);
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let task = tokio::spawn(writer_loop(writer_conn, rx, max_batch));
        Ok(SqliteStore { path: path.to_owned(), read, writer: tx, writer_task: tokio::sync::Mutex::new(Some(task)) })
    }

    pub(crate) fn read_pool(&self) -> &SqlitePool {
        &self.read
    }

    pub(crate) async fn migrate(&self) -> Result<()> {
        // Its own connection: migrations manage their own transactions, which must not nest
        // inside a group commit.
        let mut conn = SqliteConnection::connect_with(&connect_options(&self.path)).await?;
        sqlx::migrate!("../../migrations/sqlite").run_direct(None, &mut conn, false).await?;
        conn.close().await?;
        Ok(())
    }

    /// Queues a write for the next group commit and waits until that commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let job: Job = Box::new(move |c| {
            Box::pin(async move { f(c).await.map(|v| Box::new(v) as Erased) })
        });
        let (reply, wait) = oneshot::channel();
        self.writer
            .send(Command::Write(WriteRequest { job, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        let value = wait.await.map_err(|_| StoreError::Closed)??;
        value
            .downcast::<T>()
            .map(|b| *b)
            .map_err(|_| StoreError::Invalid("writer returned a value of the wrong type".into()))
    }

    pub(crate) async fn close(&self) {
        let task = self.writer_task.lock().await.take();
        if let Some(task) = task {
            let _ = self.writer.send(Command::Close).await;
            let _ = task.await;
        }
        self.read.close().await;
    }
}

type Replies = Vec<(oneshot::Sender<Result<Erased>>, Result<Erased>)>;

async fn writer_loop(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Command>, max_batch: usize) {
    let mut batch: VecDeque<WriteRequest> = VecDeque::with_capacity(max_batch);
    let mut replies: Replies = Vec::with_capacity(max_batch);
    let mut closing = false;
    while !closing {
        match rx.recv().await {
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
        match run_batch(&mut conn, &mut batch, &mut replies).await {
            Ok(()) => {
                for (reply, result) in replies.drain(..) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                tracing::error!(%error, writes = replies.len() + batch.len(), "Group commit failed; every write in it is reported failed.");
                let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
                let failed = || Err(StoreError::Invalid(format!("commit failed: {error}")));
                for (reply, _) in replies.drain(..) {
                    let _ = reply.send(failed());
                }
                for req in batch.drain(..) {
                    let _ = req.reply.send(failed());
                }
            }
        }
    }
    let _ = conn.close().await;
}

/// One transaction for the whole batch, each write in its own savepoint: a write that fails
/// is undone alone and reported to its caller while the others commit.
async fn run_batch(
    conn: &mut SqliteConnection,
    batch: &mut VecDeque<WriteRequest>,
    replies: &mut Replies,
) -> Result<()> {
    let mut tx = conn.begin().await?;
    while let Some(req) = batch.pop_front() {
        let mut sp = tx.begin().await?;
        let result = (req.job)(&mut sp).await;
        if result.is_ok() {
            sp.commit().await?;
        } else {
            sp.rollback().await?;
        }
        replies.push((req.reply, result));
    }
    tx.commit().await?;
    Ok(())
}
