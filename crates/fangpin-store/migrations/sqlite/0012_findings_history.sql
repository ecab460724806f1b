-- Every set of survey findings a claim received, with the surveyor, the
-- time and the assessment it gave, append-only: a second survey (after an
-- objection) no longer overwrites the first one's record.
CREATE TABLE claim_findings (
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    seq BIGINT NOT NULL,
    surveyed_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    -- StoredAssessment as JSON, as on the claim.
    assessment TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);
CREATE TRIGGER claim_findings_append_only_update BEFORE UPDATE ON claim_findings
BEGIN SELECT RAISE(ABORT, 'claim_findings is append-only'); END;
CREATE TRIGGER claim_findings_append_only_delete BEFORE DELETE ON claim_findings
BEGIN SELECT RAISE(ABORT, 'claim_findings is append-only'); END;
