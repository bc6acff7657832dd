//! PostgreSQL: one sqlx pool, one transaction per write.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Column, Postgres, Row as _, TypeInfo};

use crate::db::{Db, Row, Value};
use crate::{Result, StoreOptions};

pub(crate) struct PgStore {
    pool: PgPool,
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

impl Db for PgConnection {
    const IS_PG: bool = true;

    async fn execute(&mut self, sql: &str, args: Vec<Value>) -> Result<u64> {
        let q = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args);
        Ok(q.execute(&mut *self).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Value>) -> Result<Vec<Row>> {
        let rows = bind(sqlx::query(sqlx::AssertSqlSafe(sql)), args).fetch_all(&mut *self).await?;
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
        Ok(PgStore { pool })
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

    /// Runs `f` on a pooled connection.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        F: for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<T>>,
    {
        let mut conn = self.pool.acquire().await?;
        f(&mut conn).await
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
