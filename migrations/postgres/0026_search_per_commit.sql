-- Nothing changes on PostgreSQL: 0026 moves SQLite's FTS5 upkeep from per-statement
-- triggers to one refresh per group commit (see migrations/sqlite/0026). The number is
-- kept so that both engines' migrations stay numbered alike.
SELECT 1;
