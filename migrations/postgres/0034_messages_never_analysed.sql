-- A new database's `messages` must not look empty to the planner for good (issue 22 item 4).
--
-- 0032 ends with `ANALYZE messages`. On a new database that records the table as analysed
-- and empty (`reltuples` 0), which switches off PostgreSQL's guess for a table never
-- analysed (at least ten pages). Until autovacuum's first ANALYZE of the growing table, a
-- minute or more into the first intake, every plan sees `messages` as empty, and sqlx keeps
-- the generic plans it prepared then: intake's duplicate check scanned the whole table for
-- each message (13,804 rows per message in `cargo xtask bench`, 0.6 ms a statement).
--
-- TRUNCATE gives a table the statistics of a new one (`reltuples` -1). Only when the table
-- and those referencing it are empty, under a lock that holds off any insert meanwhile, so
-- no row can be lost; a database with messages keeps its statistics.
LOCK TABLE messages, attachments, outbox IN ACCESS EXCLUSIVE MODE;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM messages) AND NOT EXISTS (SELECT 1 FROM attachments)
        AND NOT EXISTS (SELECT 1 FROM outbox) THEN
        TRUNCATE messages, attachments, outbox;
    END IF;
END
$$;
