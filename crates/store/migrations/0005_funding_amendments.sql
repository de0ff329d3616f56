-- A stage's budget ceiling (NULL: none), recorded with its decree too; and corrections
-- to a decreed stage waiting for the next numbered amendment.

ALTER TABLE stages ADD COLUMN budget BIGINT;
ALTER TABLE decrees ADD COLUMN budget BIGINT;

CREATE TABLE corrections (
    stage TEXT NOT NULL,
    seq BIGINT NOT NULL,
    nik TEXT NOT NULL,
    status_before TEXT NOT NULL,
    status_after TEXT NOT NULL,
    facts_before TEXT NOT NULL,
    facts_after TEXT NOT NULL,
    level TEXT NOT NULL,
    school TEXT NOT NULL,
    npsn TEXT NOT NULL,
    kelurahan TEXT NOT NULL,
    routine BIGINT NOT NULL,
    periodic BIGINT NOT NULL,
    school_fee BIGINT NOT NULL,
    monthly_total BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    reason TEXT NOT NULL,
    evidence TEXT NOT NULL,
    corrected_by TEXT NOT NULL,
    corrected_at TEXT NOT NULL,
    amendment INTEGER,
    PRIMARY KEY (stage, seq)
);
