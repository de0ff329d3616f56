-- Every settlement of a child in review re-applies the budget ceiling, which first makes
-- the stage's unfunded children eligible again (`UPDATE decisions ... WHERE stage = $1 AND
-- status = 'unfunded'`). Without an index that scans the whole stage: half a second a
-- settlement at Jakarta's size, about 50 minutes for the demo's 6,000. A partial index holds
-- only the unfunded rows, so the stage run's bulk write does not pay for it (0003 dropped
-- the index on every status for that reason).
CREATE INDEX decisions_unfunded ON decisions (stage) WHERE status = 'unfunded';
