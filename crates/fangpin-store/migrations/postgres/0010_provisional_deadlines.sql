-- A survey deadline that counted days of a year the working-day calendar
-- did not cover (Monday to Friday, provisionally). Recomputed, and the flag
-- cleared, once the operator loads that year's arrangement.
ALTER TABLE claims ADD COLUMN survey_deadline_provisional BIGINT NOT NULL DEFAULT 0
    CHECK (survey_deadline_provisional IN (0, 1));
CREATE INDEX claims_provisional_deadlines ON claims (county_code, claim_id)
    WHERE survey_deadline_provisional = 1;
