-- Queries by status scan one stage's rows through the primary key; the separate index
-- only slowed the bulk write of a stage run (millions of rows).
DROP INDEX decisions_status;
