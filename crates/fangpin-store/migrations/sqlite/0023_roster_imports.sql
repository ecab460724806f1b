-- A county's roster (花名册) imports: one row per file enrolled, found again
-- by its hash, so the same file sent twice enrols nothing the second time.
CREATE TABLE roster_imports (
    import_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    file_name TEXT NOT NULL,
    format TEXT NOT NULL CHECK (format IN ('csv_utf8', 'csv_gbk', 'xlsx')),
    size_bytes BIGINT NOT NULL CHECK (size_bytes >= 0),
    rows_total BIGINT NOT NULL CHECK (rows_total >= 0),
    households_enrolled BIGINT NOT NULL CHECK (households_enrolled >= 0),
    persons_enrolled BIGINT NOT NULL CHECK (persons_enrolled >= 0),
    households_rejected BIGINT NOT NULL CHECK (households_rejected >= 0),
    rows_rejected BIGINT NOT NULL CHECK (rows_rejected >= 0),
    -- {"bad_id": 3, ...}: errors by code, all of them, not only those kept.
    errors_by_reason TEXT NOT NULL,
    errors_total BIGINT NOT NULL CHECK (errors_total >= 0),
    pool_size BIGINT NOT NULL,
    persons_insured BIGINT NOT NULL,
    imported_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    UNIQUE (county_code, policy_year, sha256)
);

-- The first row errors of an import, in line order (at most 1,000 kept).
CREATE TABLE roster_import_errors (
    import_id TEXT NOT NULL REFERENCES roster_imports (import_id),
    seq BIGINT NOT NULL,
    line BIGINT NOT NULL,
    field TEXT NOT NULL,
    household_no TEXT NOT NULL,
    code TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (import_id, seq)
);
