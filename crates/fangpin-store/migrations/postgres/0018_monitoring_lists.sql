-- The monthly monitoring list (月度监测名单, Hebi: sent to the townships
-- before the 10th): a screening run's candidates, one list per township,
-- each entry confirmed after a home check (which makes the claim) or
-- dismissed with a reason.
CREATE TABLE monitoring_lists (
    list_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES screening_runs (run_id),
    county_code TEXT NOT NULL,
    township_code TEXT NOT NULL,
    issued_on TEXT NOT NULL,
    due_on TEXT NOT NULL,
    issued_by TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    UNIQUE (run_id, township_code)
);

CREATE INDEX monitoring_lists_by_county ON monitoring_lists (county_code, due_on);

CREATE TABLE monitoring_list_entries (
    list_id TEXT NOT NULL REFERENCES monitoring_lists (list_id),
    run_id TEXT NOT NULL,
    household_id TEXT NOT NULL REFERENCES households (household_id),
    relief_kind TEXT NOT NULL,
    village_code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'dismissed')),
    checked_by TEXT,
    checked_on TEXT,
    note TEXT,
    claim_id TEXT REFERENCES claims (claim_id),
    decided_at TEXT,
    PRIMARY KEY (run_id, household_id, relief_kind),
    FOREIGN KEY (run_id, household_id, relief_kind)
        REFERENCES screening_candidates (run_id, household_id, relief_kind),
    CHECK ((status = 'pending') = (decided_at IS NULL)),
    CHECK ((status = 'confirmed') = (claim_id IS NOT NULL))
);

CREATE INDEX monitoring_list_entries_by_list ON monitoring_list_entries (list_id, status);
