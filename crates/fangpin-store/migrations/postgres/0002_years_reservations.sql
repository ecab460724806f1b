-- Policy-year lifecycle, two-phase reservations, reversals and cached balances.

-- A year with no row is open.
CREATE TABLE ledger_years (
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    PRIMARY KEY (county_code, policy_year)
);

-- Who closed or reopened a year, when and why.
CREATE TABLE year_events (
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    event TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (county_code, policy_year, seq)
);

-- Filed relief held in the pool until it is paid (posted) or the bank
-- returns it (voided).
CREATE TABLE reservations (
    reservation_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL CHECK (state IN ('pending', 'posted', 'voided')),
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    posted_entry TEXT
);
CREATE UNIQUE INDEX reservations_one_pending_per_claim ON reservations (claim_id) WHERE state = 'pending';
CREATE INDEX reservations_by_year ON reservations (county_code, policy_year, state);

-- A reversal names the entry it undoes; an entry is undone at most once.
ALTER TABLE ledger_entries ADD COLUMN reverses_entry_id TEXT;
CREATE UNIQUE INDEX ledger_reversed_once ON ledger_entries (reverses_entry_id) WHERE reverses_entry_id IS NOT NULL;
CREATE INDEX ledger_entries_by_time ON ledger_entries (county_code, policy_year, posted_at);

-- Per-account totals, updated with every entry in the same transaction, so a
-- balance is read without summing the year; the reconciliation re-sums the
-- entries and compares.
CREATE TABLE account_balances (
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    account TEXT NOT NULL,
    debits_fen BIGINT NOT NULL DEFAULT 0,
    credits_fen BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (county_code, policy_year, account)
);
INSERT INTO account_balances (county_code, policy_year, account, debits_fen, credits_fen)
SELECT county_code, policy_year, account, SUM(debit_fen), SUM(credit_fen) FROM (
    SELECT county_code, policy_year, debit_account AS account, amount_fen AS debit_fen, 0 AS credit_fen FROM ledger_entries
    UNION ALL
    SELECT county_code, policy_year, credit_account AS account, 0 AS debit_fen, amount_fen AS credit_fen FROM ledger_entries
) sides GROUP BY county_code, policy_year, account;
