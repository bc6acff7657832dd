-- The learned router's memory (issue 18 item 3). `routing_history`: past complaints with
-- the OPD that handled them, imported with `aduan routing import` (labels already mapped to
-- registry codes); a row is unique by the SHA-256 of its text and its OPD, so importing
-- the same file again adds nothing. `routing_models`: models fitted by `aduan routing
-- train` or the worker, newest id wins; `model` is the serialised model (base64 of
-- `Model::to_bytes`, whose own format version is `format`).
CREATE TABLE routing_history (
    id          INTEGER PRIMARY KEY,
    text_hash   TEXT NOT NULL,
    text        TEXT NOT NULL,
    opd         TEXT NOT NULL,
    source      TEXT,
    imported_at TEXT NOT NULL,
    UNIQUE (text_hash, opd)
);
CREATE TABLE routing_models (
    id         INTEGER PRIMARY KEY,
    format     INTEGER NOT NULL,
    examples   INTEGER NOT NULL,
    labels     INTEGER NOT NULL,
    model      TEXT NOT NULL,
    trained_at TEXT NOT NULL
);
