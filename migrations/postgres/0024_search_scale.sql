-- Text search at a million tickets (issue 22 item 1); see crates/aduan-store/src/ops/view.rs.
--
-- aduan_tsq: the tsquery of a search (the words of `q` are folded as the documents are).
-- It is PARALLEL UNSAFE on purpose: a search reads at most a page of the newest documents
-- or about a thousand matches, and starting parallel workers costs more (5-20 ms) than the
-- whole query; one such function in a statement keeps the planner from a parallel plan.
-- Being a plain SQL expression it is still inlined, so `doc @@ aduan_tsq($1)` is a GIN
-- condition and a constant query is folded at plan time.
CREATE FUNCTION aduan_tsq(q text) RETURNS tsquery LANGUAGE sql IMMUTABLE PARALLEL UNSAFE
    RETURN to_tsquery('simple', aduan_fold(q));

-- aduan_fold without its cost on plain ASCII text (most complaints): `translate` over the
-- 300-odd accented letters scans that list for every character of the text (0.14 ms for
-- a two-line message, six times the rest of to_tsvector); a text whose every character is
-- one byte has no accent to fold, and the result is the same as before.
CREATE OR REPLACE FUNCTION aduan_fold(s text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN octet_length(s) = char_length(s) THEN lower(s)
        ELSE translate(lower(s), 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯȰȱȲȳ', 'aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaaccccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooorrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuuuaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeooooooooyy') END;

-- The message trigger, incremental on insert: a new inbound message appends its own words
-- to its ticket's document (`doc || to_tsvector(text)`, the same document aduan_search_doc
-- would build: the messages are in id order and a new message has the highest id) instead
-- of recomputing it from every inbound message of the ticket. The ticket's first message
-- (no document yet), an edit, a delete or a move by a merge recompute it as before.
CREATE OR REPLACE FUNCTION ticket_search_message_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.direction = 'in' AND NEW.ticket_id IS NOT NULL THEN
            UPDATE ticket_search SET doc = doc || to_tsvector('simple', aduan_fold(NEW.text))
                WHERE ticket_id = NEW.ticket_id;
            IF NOT FOUND THEN
                PERFORM aduan_search_refresh(NEW.ticket_id);
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.direction = 'in' THEN
        PERFORM aduan_search_refresh(OLD.ticket_id);
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.direction = 'in'
       AND NEW.ticket_id IS DISTINCT FROM OLD.ticket_id THEN
        PERFORM aduan_search_refresh(NEW.ticket_id);
    END IF;
    RETURN NULL;
END $$;
