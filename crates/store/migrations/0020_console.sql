-- The staff console: accounts, sessions (shared by every `kjp serve` process), the
-- hash-chained audit log, and complaints taken at the kecamatan service posts.

CREATE TABLE staff_users (
    username TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    scope TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    failed_logins BIGINT NOT NULL,
    locked_until TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE staff_sessions (
    token_sha256 TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE audit_log (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    origin TEXT NOT NULL,
    prev_sha256 TEXT NOT NULL,
    sha256 TEXT NOT NULL
);

CREATE TABLE complaints (
    ticket TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    nik TEXT NOT NULL,
    contact TEXT NOT NULL,
    category TEXT NOT NULL,
    description TEXT NOT NULL,
    kecamatan TEXT NOT NULL,
    owner TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_by TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    due_date TEXT NOT NULL,
    resolved_at TEXT NOT NULL,
    resolution TEXT NOT NULL
);

CREATE INDEX complaints_kecamatan ON complaints (kecamatan, state);

CREATE TABLE complaint_events (
    ticket TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL,
    public_note TEXT NOT NULL,
    PRIMARY KEY (ticket, seq)
);

-- The last entry of the audit chain: appends move it with a compare-and-set (so two
-- processes never fork the chain), and a truncated log no longer reaches it.
CREATE TABLE audit_head (
    id BIGINT PRIMARY KEY,
    seq BIGINT NOT NULL,
    sha256 TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, sha256) VALUES (1, 0, '');
