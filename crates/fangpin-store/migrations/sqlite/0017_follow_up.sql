-- Follow-up after payment (专人帮扶, 动态管理, 解困销号): one case per paid
-- claim, its contact persons, their visits, and every change of its
-- monitoring status, so a household's status can be read back over time.
CREATE TABLE follow_up_cases (
    claim_id TEXT PRIMARY KEY REFERENCES claims (claim_id),
    county_code TEXT NOT NULL,
    household_id TEXT NOT NULL REFERENCES households (household_id),
    village_code TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('monitoring', 'cleared')),
    -- The day the visit cadence runs from: the case's opening, its latest
    -- visit or its reopening. The due date is computed from it with the
    -- calendar of the day, so a calendar extended later moves it.
    cadence_from TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE INDEX follow_up_cases_by_county ON follow_up_cases (county_code, status);
CREATE INDEX follow_up_cases_by_household ON follow_up_cases (household_id);

-- The current contact persons (one or two); earlier ones are in the events.
CREATE TABLE follow_up_contacts (
    claim_id TEXT NOT NULL REFERENCES follow_up_cases (claim_id),
    seq BIGINT NOT NULL CHECK (seq IN (1, 2)),
    name TEXT NOT NULL,
    work_unit TEXT NOT NULL,
    phone TEXT NOT NULL,
    phone_masked TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE follow_up_visits (
    claim_id TEXT NOT NULL REFERENCES follow_up_cases (claim_id),
    seq BIGINT NOT NULL,
    visited_on TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('home_visit', 'call')),
    contact_name TEXT NOT NULL,
    findings TEXT NOT NULL,
    risk_remains BIGINT NOT NULL CHECK (risk_remains IN (0, 1)),
    -- When it was due, and how late it came (0: on time); empty and 0 when
    -- the policy sets no cadence.
    due_on TEXT NOT NULL,
    working_days_late BIGINT NOT NULL CHECK (working_days_late >= 0),
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE follow_up_events (
    claim_id TEXT NOT NULL REFERENCES follow_up_cases (claim_id),
    seq BIGINT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('opened', 'contacts_changed', 'cleared', 'reopened')),
    status TEXT NOT NULL CHECK (status IN ('monitoring', 'cleared')),
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);
