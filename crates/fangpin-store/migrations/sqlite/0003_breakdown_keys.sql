-- The reconciliation groups a year's relief by relief kind and township. Both
-- are fixed when the claim is taken in, so each entry of a claim carries them:
-- the report then reads one index instead of joining every entry to its claim.
ALTER TABLE ledger_entries ADD COLUMN relief_kind TEXT;
ALTER TABLE ledger_entries ADD COLUMN township_code TEXT;

-- Backfill existing rows: the one sanctioned change to entries, done with the
-- append-only guard lifted for this migration only.
DROP TRIGGER ledger_entries_no_update;
UPDATE ledger_entries SET
    relief_kind = (SELECT c.relief_kind FROM claims c WHERE c.claim_id = ledger_entries.claim_id),
    township_code = (SELECT SUBSTR(c.village_code, 1, 9) FROM claims c WHERE c.claim_id = ledger_entries.claim_id)
WHERE claim_id IS NOT NULL;
CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are append-only');
END;

CREATE INDEX ledger_entries_breakdown ON ledger_entries
    (county_code, policy_year, kind, relief_kind, township_code, claim_id, amount_fen, reverses_entry_id);
-- Covers the re-summing of a year's totals, so it reads no table rows.
CREATE INDEX ledger_entries_totals ON ledger_entries
    (county_code, policy_year, debit_account, credit_account, posted_at, amount_fen);
