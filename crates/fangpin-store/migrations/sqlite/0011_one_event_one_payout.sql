-- One event, one payout: the natural key of a claim is its household,
-- relief kind and normalised event reference (fangpin_domain::claim::event_key:
-- trimmed, full-width folded to half-width, case-folded, inner whitespace
-- collapsed), and it holds for every claim that is not rejected, a paid one
-- included. Before this, a paid claim freed its event for a second payout.
ALTER TABLE claims ADD COLUMN event_key TEXT NOT NULL DEFAULT '';
-- Rows from before: SQL cannot fold full-width forms, so the existing keys
-- are trimmed and lower-cased only; every new claim gets the full key.
UPDATE claims SET event_key = lower(trim(event_reference));
DROP INDEX claims_one_open_per_event;
CREATE UNIQUE INDEX claims_one_per_event ON claims (household_id, relief_kind, event_key)
    WHERE state <> 'rejected';
-- Screening's cover check by household, kind and event month.
CREATE INDEX claims_by_household_kind ON claims (household_id, relief_kind, event_date);
