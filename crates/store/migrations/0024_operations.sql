-- Operations shared by every process on one database.
--
-- stage_progress: where a stage run is, written about once a second by the `kjp` command
-- running it and read by every server's /metrics. One row per stage; finished_at is empty
-- while the run goes on.
CREATE TABLE stage_progress (
    stage TEXT PRIMARY KEY,
    step TEXT NOT NULL,
    done BIGINT NOT NULL,
    total BIGINT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT NOT NULL
);

-- rate_hits: the public check's rate limit across servers. Each server adds the requests
-- it counted to its client's row of the current minute about once a second and reads the
-- totals back. The client is a sha256 of its address, never the address; rows of past
-- minutes are deleted.
CREATE TABLE rate_hits (
    minute BIGINT NOT NULL,
    client TEXT NOT NULL,
    hits BIGINT NOT NULL,
    PRIMARY KEY (minute, client)
);
