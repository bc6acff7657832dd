-- The provider-verified keys of reporters who wrote before migration 0021 (issue 22): the
-- same keys `aduan_core::profile::verified_keys` gives at intake, read back from their
-- stored inbound messages, so a new reporter sharing one links to them, and intake can skip
-- `link_on_intake` for a sender whose keys are all recorded and already linked.
--
-- A WhatsApp sender's number (`whatsapp` identities hold the digits of the E.164 number), an
-- SMS sender's number, a mail sender's address; a phone a Telegram user shared of themselves
-- is the phone identity created with one of their Telegram messages (a shared contact that
-- another reporter already owned left no trace: it is recorded at that user's next share).
-- Automated messages link nothing, as at intake.
INSERT INTO reporter_keys (key, reporter_id, created_at)
SELECT k.key, k.reporter_id, MIN(k.at) FROM (
    SELECT CASE
               WHEN m.channel = 'whatsapp' THEN 'phone:+' || i.value
               WHEN m.channel = 'sms' THEN 'phone:' || i.value
               ELSE 'email:' || i.value
           END AS key,
           i.reporter_id, m.stored_at AS at
    FROM messages m JOIN identities i ON i.id = m.identity_id
    WHERE m.direction = 'in' AND NOT m.automated
      AND ((m.channel = 'whatsapp' AND i.kind = 'whatsapp' AND i.value ~ '^[0-9]+$')
        OR (m.channel = 'sms' AND i.kind = 'phone')
        OR (m.channel = 'email' AND i.kind = 'email'))
    UNION ALL
    SELECT 'phone:' || p.value, p.reporter_id, m.stored_at
    FROM messages m JOIN identities i ON i.id = m.identity_id
    JOIN identities p ON p.reporter_id = i.reporter_id AND p.kind = 'phone'
        AND p.created_at = m.stored_at
    WHERE m.direction = 'in' AND NOT m.automated AND m.channel = 'telegram'
) AS k
GROUP BY k.key, k.reporter_id
ON CONFLICT (key, reporter_id) DO NOTHING;
