-- The township head's decision on an emergency (遇困即扶: 乡镇主要负责同志
-- 批准), one per claim, and the departments' cross-check results before
-- filing (县级相关部门信息比对), every one kept.
CREATE TABLE emergency_decisions (
    claim_id TEXT PRIMARY KEY REFERENCES claims (claim_id),
    decision TEXT NOT NULL CHECK (decision IN ('approved', 'refused')),
    amount_fen BIGINT,
    decided_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    CHECK ((decision = 'approved') = (amount_fen IS NOT NULL)),
    CHECK (amount_fen IS NULL OR amount_fen > 0)
);

CREATE TABLE cross_check_results (
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    seq BIGINT NOT NULL,
    check_code TEXT NOT NULL,
    result TEXT NOT NULL CHECK (result IN ('clear', 'hit', 'not_possible')),
    details TEXT NOT NULL,
    checked_by TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    -- The survey round (claim_findings.seq) the result was recorded in: a
    -- resurvey makes earlier results history, not grounds for filing.
    findings_seq BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (claim_id, seq)
);
