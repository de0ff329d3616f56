-- Money: bank accounts, payment batches and their lines, the exactly-once ledger of
-- paid benefit months, card feeds and their flags, sanctions, and an audit trail.

CREATE TABLE accounts (
    nik BIGINT PRIMARY KEY,
    account TEXT NOT NULL,
    holder TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The reason of the last failed payment into it ('' when none): no payment goes to
    -- it until the bank reports the account again (the next accounts import clears it).
    hold TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE pay_batches (
    batch TEXT PRIMARY KEY,
    stage TEXT NOT NULL,
    -- The benefit months asked for, as a bit set over the stage's six months.
    months INTEGER NOT NULL,
    seq BIGINT NOT NULL UNIQUE,
    lines BIGINT NOT NULL,
    total BIGINT NOT NULL,
    file_name TEXT NOT NULL,
    file_sha256 TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    return_sha256 TEXT NOT NULL,
    reconciled_at TEXT NOT NULL
);

CREATE TABLE pay_lines (
    batch TEXT NOT NULL,
    line INTEGER NOT NULL,
    nik BIGINT NOT NULL,
    -- The benefit months this line pays, as a bit set over the stage's six months.
    months INTEGER NOT NULL,
    name TEXT NOT NULL,
    account TEXT NOT NULL,
    level TEXT NOT NULL,
    kelurahan TEXT NOT NULL,
    routine BIGINT NOT NULL,
    periodic BIGINT NOT NULL,
    school_fee BIGINT NOT NULL,
    amount BIGINT NOT NULL,
    -- sent, credited or failed (with the bank's reason).
    status TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (batch, line)
);

-- Exactly once: a benefit month of a child is sent or credited at most once. A failed
-- line's months are deleted from here (the line keeps its failure) and are owed again.
CREATE TABLE payment_months (
    nik BIGINT NOT NULL,
    month INTEGER NOT NULL,
    batch TEXT NOT NULL,
    line INTEGER NOT NULL,
    PRIMARY KEY (nik, month)
);

CREATE TABLE card_feeds (
    sha256 TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    rows_total BIGINT NOT NULL,
    rows_bad BIGINT NOT NULL,
    cash BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    flags BIGINT NOT NULL,
    imported_at TEXT NOT NULL
);

-- What each card spent, per feed: the balance left is credited minus spent.
CREATE TABLE card_spending (
    feed TEXT NOT NULL,
    nik BIGINT NOT NULL,
    cash BIGINT NOT NULL,
    purchases BIGINT NOT NULL,
    PRIMARY KEY (feed, nik)
);

CREATE TABLE card_flags (
    feed TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    nik BIGINT NOT NULL,
    merchant TEXT NOT NULL,
    value BIGINT NOT NULL,
    lim BIGINT NOT NULL,
    lines TEXT NOT NULL,
    PRIMARY KEY (feed, seq)
);

CREATE TABLE sanctions (
    nik BIGINT NOT NULL,
    seq INTEGER NOT NULL,
    category TEXT NOT NULL,
    evidence TEXT NOT NULL,
    act_date TEXT NOT NULL,
    school TEXT NOT NULL,
    -- The first benefit month (YYYYMM) not paid because of it.
    stop_from INTEGER NOT NULL,
    -- The unspent balance marked for withdrawal, in rupiah.
    withdraw BIGINT NOT NULL,
    recorded_at TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    lifted_at TEXT NOT NULL,
    lifted_by TEXT NOT NULL,
    lift_school TEXT NOT NULL,
    lift_reason TEXT NOT NULL,
    PRIMARY KEY (nik, seq)
);

CREATE TABLE money_audit (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
