-- Settled conflicts and the Governor's decree that freezes a stage.

CREATE TABLE resolutions (
    stage TEXT NOT NULL,
    nik TEXT NOT NULL,
    rule TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    resolved_by TEXT NOT NULL,
    resolved_at TEXT NOT NULL,
    before_status TEXT NOT NULL,
    before_unknown TEXT NOT NULL,
    PRIMARY KEY (stage, nik)
);

CREATE TABLE decrees (
    stage TEXT NOT NULL,
    amendment INTEGER NOT NULL,
    number TEXT NOT NULL,
    decree_date TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    policy_sha256 TEXT NOT NULL,
    snapshots TEXT NOT NULL,
    recipients BIGINT NOT NULL,
    unfunded BIGINT NOT NULL,
    monthly_total BIGINT NOT NULL,
    note TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    previous_sha256 TEXT NOT NULL,
    PRIMARY KEY (stage, amendment)
);

CREATE TABLE decree_entries (
    stage TEXT NOT NULL,
    amendment INTEGER NOT NULL,
    nik TEXT NOT NULL,
    status TEXT NOT NULL,
    level TEXT NOT NULL,
    school TEXT NOT NULL,
    npsn TEXT NOT NULL,
    kelurahan TEXT NOT NULL,
    routine BIGINT NOT NULL,
    periodic BIGINT NOT NULL,
    school_fee BIGINT NOT NULL,
    monthly_total BIGINT NOT NULL,
    change TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (stage, amendment, nik)
);
