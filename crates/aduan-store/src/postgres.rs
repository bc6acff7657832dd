//! PostgreSQL: one pool, one transaction per write.

use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use crate::{Result, StoreOptions};

pub(crate) struct PgStore {
    pool: PgPool,
}

impl PgStore {
    pub(crate) async fn open(url: &str, opts: &StoreOptions) -> Result<PgStore> {
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PgStore { pool })
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
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
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let mut tx = self.pool.begin().await?;
        let value = f(&mut tx).await?;
        tx.commit().await?;
        Ok(value)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
