-- aduan_search_doc reads a ticket's inbound messages through `messages_ticket` only
-- (issue 22 item 4: PostgreSQL intake).
--
-- Its subquery said `WHERE m.ticket_id = t.id AND m.direction = 'in'`. PL/pgSQL keeps one
-- plan per session, made from the statistics of the moment; on young tables it was a
-- BitmapAnd of `messages_ticket` with the partial index `messages_identity_stored`
-- (`WHERE direction = 'in'`), which reads EVERY inbound message's entry to build one
-- ticket's document. A new ticket's first message therefore cost time in proportion to
-- the whole table (1.0-1.4 ms per message in `cargo xtask bench` at a few thousand
-- messages, 0.37 ms against 0.07 ms at 22,000 in a direct test), and a pooled connection
-- kept that plan. Filtering the direction inside the aggregate leaves the planner nothing
-- but the ticket's own messages. The document is the same (checked over 2,000 tickets).
CREATE OR REPLACE FUNCTION aduan_search_doc(tid bigint) RETURNS tsvector LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN (SELECT setweight(to_tsvector('simple', aduan_fold(t.code || ' '
                || coalesce(t.place, '') || ' ' || coalesce(t.kecamatan, '') || ' '
                || coalesce(r.name, ''))), 'A')
            || to_tsvector('simple', aduan_fold(coalesce((SELECT string_agg(m.text, ' '
                ORDER BY m.id) FILTER (WHERE m.direction = 'in') FROM messages m
                WHERE m.ticket_id = t.id), '')))
        FROM tickets t LEFT JOIN reporters r ON r.id = t.reporter_id WHERE t.id = tid);
END $$;
