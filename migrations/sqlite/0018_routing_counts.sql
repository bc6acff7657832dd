-- Routing quality counters (issue 18 item 6), kept on write by every disposition
-- (`ops/actions.rs`, `count_disposition`) so that /metrics reads a row per OPD instead of
-- scanning the events. Per OPD of a ticket's first disposition: `auto_n` first disposed
-- by the router, `manual_n` by a person; `redisposed_n` of the `auto_n`, those a person
-- later disposed to another OPD (counted once per ticket). Backfilled from the events.
CREATE TABLE routing_counts (
    opd          TEXT PRIMARY KEY,
    auto_n       INTEGER NOT NULL DEFAULT 0,
    manual_n     INTEGER NOT NULL DEFAULT 0,
    redisposed_n INTEGER NOT NULL DEFAULT 0
);
INSERT INTO routing_counts (opd, auto_n, manual_n, redisposed_n)
SELECT e.to_value,
    SUM(CASE WHEN e.actor = 'system' THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.actor <> 'system' THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.actor = 'system' AND EXISTS (SELECT 1 FROM events r
        WHERE r.ticket_id = e.ticket_id AND r.kind = 'assigned' AND r.id > e.id
        AND r.actor <> 'system' AND r.to_value IS NOT NULL AND r.to_value <> e.to_value)
        THEN 1 ELSE 0 END)
FROM events e
WHERE e.kind = 'assigned' AND e.to_value IS NOT NULL
AND e.id = (SELECT MIN(f.id) FROM events f
    WHERE f.ticket_id = e.ticket_id AND f.kind = 'assigned' AND f.to_value IS NOT NULL)
GROUP BY e.to_value;
