//! The narrow seam between the queries and the two database drivers.
//!
//! `ops.rs` is written once against [`Db`]: run a statement with `$n` parameters, get rows
//! back as [`Row`]s of typed [`Value`]s. PostgreSQL implements it with sqlx; SQLite with
//! rusqlite on the writer thread and the read threads, where a statement costs a few
//! microseconds instead of the ~50 µs thread hand-off per statement of an async driver
//! (measured on these 2-core machines; an intake write is about ten statements).

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{Result, StoreError};

/// A parameter or a column value. Nulls carry their type: PostgreSQL needs it to bind them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Time(Option<DateTime<Utc>>),
}

macro_rules! value_from {
    ($variant:ident, $t:ty, $conv:expr) => {
        impl From<$t> for Value {
            fn from(v: $t) -> Value {
                Value::$variant(Some($conv(v)))
            }
        }
        impl From<Option<$t>> for Value {
            fn from(v: Option<$t>) -> Value {
                Value::$variant(v.map($conv))
            }
        }
    };
}

value_from!(Int, i64, |v| v);
value_from!(Real, f64, |v| v);
value_from!(Text, String, |v| v);
value_from!(Text, &str, |v: &str| v.to_owned());
value_from!(Text, &String, |v: &String| v.clone());
value_from!(Bool, bool, |v| v);

impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        Value::Text(v.clone())
    }
}
value_from!(Time, DateTime<Utc>, crate::truncate_ms);

/// Builds a parameter list: `args![a, b, c]`, each converted with `Value::from`.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        vec![$($crate::db::Value::from($v)),*]
    };
}
pub(crate) use args;

/// One result row; columns are looked up by name.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) columns: Arc<[String]>,
    pub(crate) values: Vec<Value>,
}

impl Row {
    pub(crate) fn get<T: FromValue>(&self, name: &str) -> Result<T> {
        let i = self
            .columns
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| StoreError::Internal(format!("query has no column {name:?}")))?;
        T::from_value(&self.values[i]).ok_or_else(|| {
            StoreError::Internal(format!("column {name:?} holds {:?}", self.values[i]))
        })
    }
}

/// Reads a typed value out of a [`Value`]; `None` when the types don't fit.
pub(crate) trait FromValue: Sized {
    fn from_value(v: &Value) -> Option<Self>;
    /// Whether `v` is a SQL NULL.
    fn is_null(v: &Value) -> bool {
        matches!(
            v,
            Value::Int(None)
                | Value::Real(None)
                | Value::Text(None)
                | Value::Bool(None)
                | Value::Time(None)
        )
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Option<i64> {
        match v {
            Value::Int(Some(i)) => Some(*i),
            _ => None,
        }
    }
}

impl FromValue for f64 {
    fn from_value(v: &Value) -> Option<f64> {
        match v {
            Value::Real(Some(f)) => Some(*f),
            Value::Int(Some(i)) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Option<String> {
        match v {
            Value::Text(Some(s)) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromValue for bool {
    fn from_value(v: &Value) -> Option<bool> {
        match v {
            Value::Bool(Some(b)) => Some(*b),
            Value::Int(Some(i)) => Some(*i != 0),
            _ => None,
        }
    }
}

impl FromValue for DateTime<Utc> {
    fn from_value(v: &Value) -> Option<DateTime<Utc>> {
        match v {
            Value::Time(Some(t)) => Some(*t),
            Value::Text(Some(s)) => DateTime::parse_from_rfc3339(s).ok().map(|t| t.to_utc()),
            _ => None,
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Option<Option<T>> {
        if T::is_null(v) { Some(None) } else { T::from_value(v).map(Some) }
    }
}

/// A connection inside a transaction (writes) or a plain one (reads). Statements use `$1`,
/// `$2`, … for parameters on both backends.
pub(crate) trait Db: Send {
    /// Whether this is PostgreSQL (for the few statements that differ).
    const IS_PG: bool;

    /// Runs a statement; returns the number of rows it changed.
    fn execute(&mut self, sql: &str, args: Vec<Value>) -> impl Future<Output = Result<u64>> + Send;

    fn fetch_all(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Row>>> + Send;

    fn fetch_optional(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Option<Row>>> + Send {
        async move { Ok(self.fetch_all(sql, args).await?.into_iter().next()) }
    }

    /// The one row a statement must return.
    fn fetch_one(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Row>> + Send {
        async move {
            self.fetch_optional(sql, args)
                .await?
                .ok_or_else(|| StoreError::Internal("statement returned no row".into()))
        }
    }

    /// The first column of every row.
    fn fetch_all_scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<T>>> + Send {
        async move { self.fetch_all(sql, args).await?.iter().map(first_column).collect() }
    }

    /// The first column of the one row a statement must return.
    fn fetch_one_scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<T>> + Send {
        async move {
            let row = self
                .fetch_optional(sql, args)
                .await?
                .ok_or_else(|| StoreError::Internal("statement returned no row".into()))?;
            first_column(&row)
        }
    }

    /// The first column of the row a statement returns, if any.
    fn fetch_optional_scalar<T: FromValue + Send>(
        &mut self,
        sql: &str,
        args: Vec<Value>,
    ) -> impl Future<Output = Result<Option<T>>> + Send {
        async move {
            match self.fetch_optional(sql, args).await? {
                Some(row) => Ok(Some(first_column(&row)?)),
                None => Ok(None),
            }
        }
    }
}

fn first_column<T: FromValue>(row: &Row) -> Result<T> {
    let v = row.values.first().ok_or_else(|| StoreError::Internal("row has no columns".into()))?;
    T::from_value(v).ok_or_else(|| StoreError::Internal(format!("unexpected value {v:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways() {
        let row = Row {
            columns: vec!["a".to_string(), "b".into(), "c".into(), "d".into()].into(),
            values: args![7i64, None::<String>, "2026-11-29T14:00:00.123Z", 1i64],
        };
        assert_eq!(row.get::<i64>("a").unwrap(), 7);
        assert_eq!(row.get::<Option<String>>("b").unwrap(), None);
        assert_eq!(row.get::<DateTime<Utc>>("c").unwrap().timestamp_subsec_millis(), 123);
        assert!(row.get::<bool>("d").unwrap());
        assert!(row.get::<String>("a").is_err());
        assert!(row.get::<i64>("zz").is_err());
    }
}
