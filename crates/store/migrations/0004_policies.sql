-- The text of every policy a stage was decided under, by its sha256: a decision can be
-- replayed, and a what-if compared, against exactly the rules that made it.

CREATE TABLE policies (
    sha256 TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
