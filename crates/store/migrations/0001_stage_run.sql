-- Snapshots of agency files, stages, stage runs and decisions.
-- Portable SQL: it runs unchanged on SQLite and PostgreSQL. Forward-only: never edit a
-- migration once applied (the runner checks each one's sha256); add a new file.

CREATE TABLE snapshots (
    sha256 TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    file_name TEXT NOT NULL,
    path TEXT NOT NULL,
    rows_total BIGINT NOT NULL,
    rows_good BIGINT NOT NULL,
    rows_bad BIGINT NOT NULL,
    report_path TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    seq BIGINT NOT NULL
);
CREATE INDEX snapshots_source ON snapshots (source, seq);

CREATE TABLE stages (
    stage TEXT PRIMARY KEY,
    year INTEGER NOT NULL,
    half INTEGER NOT NULL,
    as_of TEXT NOT NULL,
    state TEXT NOT NULL,
    opened_at TEXT NOT NULL
);

CREATE TABLE stage_runs (
    stage TEXT NOT NULL,
    run INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    policy_id TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    snapshots TEXT NOT NULL,
    candidates BIGINT NOT NULL,
    PRIMARY KEY (stage, run)
);

CREATE TABLE decisions (
    stage TEXT NOT NULL,
    nik TEXT NOT NULL,
    kk TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    status TEXT NOT NULL,
    grp TEXT NOT NULL,
    level TEXT NOT NULL,
    school TEXT NOT NULL,
    npsn TEXT NOT NULL,
    kelurahan TEXT NOT NULL,
    routine BIGINT NOT NULL,
    periodic BIGINT NOT NULL,
    school_fee BIGINT NOT NULL,
    monthly_total BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    unknown TEXT NOT NULL,
    conflicts TEXT NOT NULL,
    evidence TEXT NOT NULL,
    facts TEXT NOT NULL,
    PRIMARY KEY (stage, nik)
);
CREATE INDEX decisions_status ON decisions (stage, status);
