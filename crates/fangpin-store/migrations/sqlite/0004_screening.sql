-- Department data screening: imported feeds, the costs they carry per
-- household, and screening runs with their candidates.

-- One imported file. The same bytes (sha256) are counted once per county,
-- policy year and feed.
CREATE TABLE feed_imports (
    import_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    kind TEXT NOT NULL,
    file_name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
    rows_total BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    rows_not_counted BIGINT NOT NULL,
    households_touched BIGINT NOT NULL,
    -- JSON objects: {"bad_id": 3, ...} and {"illness": 123400, ...} (fen).
    rejected_by_reason TEXT NOT NULL,
    totals TEXT NOT NULL,
    request_id TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    CHECK (rows_total = rows_accepted + rows_rejected),
    UNIQUE (county_code, policy_year, kind, sha256)
);

-- The first rejected rows of an import (at most 1,000 are kept; all are
-- counted in feed_imports.rejected_by_reason).
CREATE TABLE feed_row_errors (
    import_id TEXT NOT NULL REFERENCES feed_imports (import_id),
    line BIGINT NOT NULL,
    field TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (import_id, line)
);

-- What one import says a household spent, per relief kind and calendar
-- year, one column per month (fen). Summing rows across imports gives the
-- household's costs; a screening window picks the months.
CREATE TABLE feed_costs (
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    household_id TEXT NOT NULL REFERENCES households (household_id),
    relief_kind TEXT NOT NULL,
    cost_year BIGINT NOT NULL,
    import_id TEXT NOT NULL REFERENCES feed_imports (import_id),
    m01 BIGINT NOT NULL, m02 BIGINT NOT NULL, m03 BIGINT NOT NULL, m04 BIGINT NOT NULL,
    m05 BIGINT NOT NULL, m06 BIGINT NOT NULL, m07 BIGINT NOT NULL, m08 BIGINT NOT NULL,
    m09 BIGINT NOT NULL, m10 BIGINT NOT NULL, m11 BIGINT NOT NULL, m12 BIGINT NOT NULL,
    PRIMARY KEY (county_code, policy_year, household_id, relief_kind, cost_year, import_id)
);

-- Civil affairs' latest verified income per household (民政核对).
CREATE TABLE household_incomes (
    household_id TEXT PRIMARY KEY REFERENCES households (household_id),
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    per_capita_fen BIGINT NOT NULL CHECK (per_capita_fen >= 0),
    status TEXT NOT NULL,
    verified_on TEXT NOT NULL,
    import_id TEXT NOT NULL REFERENCES feed_imports (import_id)
);

CREATE TABLE screening_runs (
    run_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    policy_version BIGINT NOT NULL,
    as_of TEXT NOT NULL,
    households_screened BIGINT NOT NULL,
    households_with_costs BIGINT NOT NULL,
    candidates BIGINT NOT NULL,
    excluded_by_income BIGINT NOT NULL,
    -- JSON array of the import ids whose data the run used.
    import_ids TEXT NOT NULL,
    request_id TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE screening_candidates (
    run_id TEXT NOT NULL REFERENCES screening_runs (run_id),
    household_id TEXT NOT NULL REFERENCES households (household_id),
    relief_kind TEXT NOT NULL,
    village_code TEXT NOT NULL,
    household_type TEXT NOT NULL,
    window_first TEXT NOT NULL,
    window_last TEXT NOT NULL,
    cost_fen BIGINT NOT NULL,
    threshold_fen BIGINT NOT NULL,
    over_by_fen BIGINT NOT NULL,
    income_limit_fen BIGINT NOT NULL,
    income_fen BIGINT,
    reason TEXT NOT NULL,
    claim_id TEXT,
    PRIMARY KEY (run_id, household_id, relief_kind)
);

-- Claims made from screening, with the window they cover: a household gets
-- one claim per relief kind for overlapping windows.
CREATE TABLE screening_claims (
    household_id TEXT NOT NULL REFERENCES households (household_id),
    relief_kind TEXT NOT NULL,
    window_first TEXT NOT NULL,
    window_last TEXT NOT NULL,
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    run_id TEXT NOT NULL REFERENCES screening_runs (run_id),
    PRIMARY KEY (household_id, relief_kind, window_first)
);
