-- The county's own steps on a recommended case, every record kept: the
-- village's deliberation (村级评议) with its attendance, vote and minutes,
-- and the township's review (乡级审核), approved or sent back with a reason.
CREATE TABLE village_deliberations (
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    seq BIGINT NOT NULL,
    -- The survey round (claim_findings.seq) the meeting deliberated on.
    findings_seq BIGINT NOT NULL,
    held_on TEXT NOT NULL,
    members BIGINT NOT NULL CHECK (members > 0),
    present BIGINT NOT NULL CHECK (present >= 0 AND present <= members),
    in_favour BIGINT NOT NULL CHECK (in_favour >= 0 AND in_favour <= present),
    result TEXT NOT NULL CHECK (result IN ('agreed', 'not_agreed')),
    minutes_evidence_id TEXT NOT NULL REFERENCES evidence (evidence_id),
    recorded_by TEXT NOT NULL,
    note TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);

CREATE TABLE township_reviews (
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    seq BIGINT NOT NULL,
    findings_seq BIGINT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'sent_back')),
    reason TEXT NOT NULL,
    reviewed_by TEXT NOT NULL,
    reviewed_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    CHECK (decision = 'approved' OR reason <> ''),
    PRIMARY KEY (claim_id, seq)
);

-- Filed (备案) under the claim's procedure: its relief is reserved or paid.
-- Until counties chose their steps every procedure filed last, so a claim
-- was filed exactly when it stood filed, paid or with a returned payout.
ALTER TABLE claims ADD COLUMN filed BIGINT NOT NULL DEFAULT 0 CHECK (filed IN (0, 1));
UPDATE claims SET filed = 1 WHERE state IN ('filed', 'paid', 'payout_failed');
