-- The search index's segments are merged by the writer, a bounded step with each commit
-- (`sqlite::refresh_search`, `MERGE_PAGES`), instead of by FTS5's automerge (issue
-- 22 item 3, open-loop tail).
--
-- automerge did its work in bursts inside COMMIT: every 64 leaf pages written, 64 pages of
-- merging per level of the index at once. At 2,000 messages/s that was a 10-17 ms COMMIT
-- every ~25 commits, and every request waiting for it was late. crisismerge (a level with
-- this many segments is merged at once) stays as a backstop should the steps fall behind;
-- 64 instead of 16 so that it never preempts them.
INSERT INTO ticket_search (ticket_search, rank) VALUES ('automerge', 0);
INSERT INTO ticket_search (ticket_search, rank) VALUES ('crisismerge', 64);
