-- Registry interoperability (DCI): other agencies' subscriptions to recipient changes,
-- the transactions they sent, and the outbox of recipient changes to notify.
--
-- Events are derived from what is stored (decree records, sanctions), each source once
-- (registry_sources), and numbered by seq: a subscription keeps the last seq its
-- receiver acknowledged, so nothing is lost while no server runs, and a lease
-- (lease_owner, lease_until) lets one `kjp serve` process at a time deliver to it.

CREATE TABLE registry_events (
    seq BIGINT PRIMARY KEY,
    source TEXT NOT NULL,
    stage TEXT NOT NULL,
    nik TEXT NOT NULL,
    change TEXT NOT NULL,
    status TEXT NOT NULL,
    since TEXT NOT NULL,
    decree TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

CREATE INDEX registry_events_stage ON registry_events (stage, seq);

CREATE TABLE registry_sources (
    source TEXT PRIMARY KEY,
    events BIGINT NOT NULL,
    derived_at TEXT NOT NULL
);

CREATE TABLE registry_subscriptions (
    code TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    reference_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    notify_url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    cancelled_at TEXT NOT NULL,
    delivered_seq BIGINT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_until TEXT NOT NULL
);

CREATE INDEX registry_subscriptions_client ON registry_subscriptions (client);

CREATE TABLE registry_transactions (
    client TEXT NOT NULL,
    message_id TEXT NOT NULL,
    transaction_id TEXT NOT NULL,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (client, message_id)
);

CREATE INDEX registry_transactions_txn ON registry_transactions (client, transaction_id);

-- Answers to asynchronous requests (an async search's on-search), waiting to be POSTed to
-- the requester's callback URL; the body is emptied once delivered.
CREATE TABLE registry_callbacks (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    action TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NOT NULL,
    lease_owner TEXT NOT NULL,
    lease_until TEXT NOT NULL
);

-- "Since when" for one NIK reads its decree entries across amendments.
CREATE INDEX decree_entries_nik ON decree_entries (nik, stage);
