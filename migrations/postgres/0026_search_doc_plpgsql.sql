-- aduan_search_doc as PL/pgSQL (issue 22: PostgreSQL intake cost of the search index).
--
-- A new ticket's first message builds its document with aduan_search_doc. As a LANGUAGE sql
-- function called from the plpgsql refresh it is not inlined, and PostgreSQL before 18
-- parses and plans a SQL function's body again on every call: under a new-sender intake
-- load that re-planning was most of the 0.85 ms the trigger cost per message
-- (pg_stat_statements of `cargo xtask bench`). PL/pgSQL keeps the plan of its statement for
-- the session. Same body, same document.
CREATE OR REPLACE FUNCTION aduan_search_doc(tid bigint) RETURNS tsvector LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT setweight(to_tsvector('simple', aduan_fold(t.code || ' '
                || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' '
                || coalesce(r.name, ''))), 'A')
            || to_tsvector('simple', aduan_fold(coalesce((SELECT string_agg(m.text, ' ' ORDER BY m.id)
                FROM messages m WHERE m.ticket_id = t.id AND m.direction = 'in'), '')))
        FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id WHERE t.id = tid);
END $$;
