-- An emergency advance larger than the relief finally assessed (or paid on
-- a claim the survey rejected): the excess is owed back to the pool. The
-- county office either records its recovery (the money comes back: a
-- partial reversal of the advance entry) or writes it off with a reason
-- (the pool bears it). A year does not close while one is open.
CREATE TABLE advance_receivables (
    claim_id TEXT PRIMARY KEY REFERENCES claims (claim_id),
    county_code TEXT NOT NULL,
    policy_year BIGINT NOT NULL,
    amount_fen BIGINT NOT NULL CHECK (amount_fen > 0),
    state TEXT NOT NULL CHECK (state IN ('open', 'recovered', 'written_off')),
    raised_at TEXT NOT NULL,
    resolved_by TEXT,
    resolution_note TEXT,
    resolved_at TEXT,
    entry_id TEXT
);
CREATE INDEX advance_receivables_by_year ON advance_receivables (county_code, policy_year, state);
