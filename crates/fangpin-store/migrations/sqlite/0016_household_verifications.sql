-- Every civil-affairs verification (民政核对), one per household, calendar
-- year and import (the year's latest in that file). household_incomes keeps
-- only the latest; income drop (收入下降) compares a year's income with the
-- years before, and a claim's civil-affairs status is the one verified as
-- of its event date.
CREATE TABLE household_verifications (
    household_id TEXT NOT NULL REFERENCES households (household_id),
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    verified_year BIGINT NOT NULL,
    verified_on TEXT NOT NULL,
    per_capita_fen BIGINT NOT NULL CHECK (per_capita_fen >= 0),
    status TEXT NOT NULL,
    import_id TEXT NOT NULL REFERENCES feed_imports (import_id),
    PRIMARY KEY (household_id, verified_year, import_id)
);

CREATE INDEX household_verifications_by_year
    ON household_verifications (county_code, policy_year, household_id);

-- What was stored before: each household's latest verification.
INSERT INTO household_verifications (household_id, county_code, policy_year, verified_year,
    verified_on, per_capita_fen, status, import_id)
SELECT household_id, county_code, policy_year, CAST(SUBSTR(verified_on, 1, 4) AS BIGINT),
    verified_on, per_capita_fen, status, import_id
FROM household_incomes;
