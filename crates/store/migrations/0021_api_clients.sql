-- Other agencies' systems calling the API: one row per client, holding only the sha256
-- of its bearer token. Revoking sets revoked_at; the row stays for the audit log.

CREATE TABLE api_clients (
    name TEXT PRIMARY KEY,
    agency TEXT NOT NULL,
    scopes TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT NOT NULL
);
