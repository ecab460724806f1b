-- A transfer the bank returns after payout: the payout entry is reversed,
-- the claim is owed again and paid anew. Each payout attempt of a claim has
-- its own natural key, so one claim has at most one unreversed payout per
-- attempt and an attempt begins only with a reversal (ledger_reversed_once).
ALTER TABLE ledger_entries ADD COLUMN payout_attempt BIGINT NOT NULL DEFAULT 0;
DROP INDEX ledger_one_per_claim_and_kind;
CREATE UNIQUE INDEX ledger_one_per_claim_kind_attempt
    ON ledger_entries (claim_id, kind, payout_attempt)
    WHERE claim_id IS NOT NULL AND reverses_entry_id IS NULL;

-- How often the bank returned the claim's payout, and what the last
-- payout went to: the masked account and the bank's reference.
ALTER TABLE claims ADD COLUMN payout_returns BIGINT NOT NULL DEFAULT 0;
ALTER TABLE claims ADD COLUMN paid_account_masked TEXT
    CHECK (paid_account_masked IS NULL OR length(replace(paid_account_masked, '*', '')) <= 4);
ALTER TABLE claims ADD COLUMN paid_bank_reference TEXT;

-- Corrections of a household's bank account (惠民惠农一卡通), by whom and
-- why; masked forms only, the sealed account lives on the household.
CREATE TABLE bank_account_corrections (
    household_id TEXT NOT NULL REFERENCES households (household_id),
    seq BIGINT NOT NULL,
    old_account_masked TEXT NOT NULL CHECK (length(replace(old_account_masked, '*', '')) <= 4),
    new_account_masked TEXT NOT NULL CHECK (length(replace(new_account_masked, '*', '')) <= 4),
    corrected_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    request_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (household_id, seq)
);
