-- fangpin schema, SQLite dialect. The PostgreSQL file beside this one holds the
-- same tables; queries are written once in SQL both accept. Money is integer fen.

CREATE TABLE counties (
    county_code TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    rural_population BIGINT NOT NULL CHECK (rural_population > 0),
    insurer TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE policies (
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    version BIGINT NOT NULL CHECK (version > 0),
    body TEXT NOT NULL,
    frozen BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    PRIMARY KEY (county_code, policy_year, version)
);

CREATE TABLE households (
    household_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    village_code TEXT NOT NULL,
    household_type TEXT NOT NULL,
    head_name TEXT NOT NULL,
    head_id_number TEXT NOT NULL,
    bank_account TEXT NOT NULL,
    persons BIGINT NOT NULL CHECK (persons > 0),
    created_at TEXT NOT NULL
);
CREATE INDEX households_by_county ON households (county_code, policy_year);

-- A person is insured once per policy year, wherever enrolled.
CREATE TABLE persons (
    policy_year BIGINT NOT NULL,
    id_number TEXT NOT NULL,
    household_id TEXT NOT NULL REFERENCES households (household_id),
    county_code TEXT NOT NULL,
    name TEXT NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (policy_year, id_number)
);
CREATE INDEX persons_by_county ON persons (county_code, policy_year);

CREATE TABLE claims (
    claim_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    policy_version BIGINT NOT NULL,
    household_id TEXT NOT NULL REFERENCES households (household_id),
    village_code TEXT NOT NULL,
    relief_kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    state TEXT NOT NULL,
    event_date TEXT NOT NULL,
    event_reference TEXT NOT NULL,
    claimed_cost_fen BIGINT NOT NULL CHECK (claimed_cost_fen >= 0),
    description TEXT NOT NULL,
    submitted_by TEXT NOT NULL,
    intake_date TEXT NOT NULL,
    survey_deadline TEXT NOT NULL,
    surveyor TEXT,
    assessment TEXT,
    assessed_amount_fen BIGINT CHECK (assessed_amount_fen >= 0),
    advance_fen BIGINT NOT NULL DEFAULT 0 CHECK (advance_fen >= 0),
    payout_fen BIGINT CHECK (payout_fen >= 0),
    publicity_opens_on TEXT,
    publicity_last_day TEXT,
    recommendation_reason TEXT,
    objections BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
-- At most one open claim per household, relief kind and event.
CREATE UNIQUE INDEX claims_one_open_per_event ON claims (household_id, relief_kind, event_reference)
    WHERE state NOT IN ('rejected', 'paid');
CREATE INDEX claims_by_county_state ON claims (county_code, state, created_at, claim_id);
CREATE INDEX claims_by_surveyor ON claims (surveyor, state);
CREATE INDEX claims_by_village ON claims (village_code, state);

CREATE TABLE claim_transitions (
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    seq BIGINT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE objections (
    objection_id TEXT PRIMARY KEY,
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    objector TEXT NOT NULL,
    reason TEXT NOT NULL,
    raised_at TEXT NOT NULL
);

-- The fund-pool ledger: one row per balanced posting (debit one account,
-- credit another of the same county and policy year). Append-only.
CREATE TABLE ledger_entries (
    entry_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    sequence BIGINT NOT NULL CHECK (sequence > 0),
    kind TEXT NOT NULL,
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL CHECK (credit_account <> debit_account),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    claim_id TEXT,
    reference TEXT NOT NULL,
    request_id TEXT NOT NULL,
    posted_at TEXT NOT NULL,
    UNIQUE (county_code, policy_year, sequence)
);
-- Natural key as a second guard: one payout and one advance per claim.
CREATE UNIQUE INDEX ledger_one_per_claim_and_kind ON ledger_entries (claim_id, kind) WHERE claim_id IS NOT NULL;

CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;
CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;

CREATE TABLE top_up_flags (
    flag_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    claim_id TEXT NOT NULL,
    shortfall_fen BIGINT NOT NULL CHECK (shortfall_fen > 0),
    raised_at TEXT NOT NULL,
    cleared_at TEXT,
    cleared_by_entry TEXT
);
CREATE INDEX top_up_flags_open ON top_up_flags (county_code, policy_year, cleared_at);

-- Client request ids: the first outcome of each (rpc, request_id), stored in the
-- same transaction as its effect, or alone for a business rejection.
CREATE TABLE idempotency (
    rpc TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code BIGINT NOT NULL,
    status_message TEXT NOT NULL,
    response BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (rpc, request_id)
);
