//! PostgreSQL for tests — being written.
