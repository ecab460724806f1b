-- Evidence files of a claim (receipts, hospital bills, photos): the bytes
-- live in the object store under their SHA-256; a row here is what makes
-- them part of a claim. One file is attached to a claim once.
CREATE TABLE evidence (
    evidence_id TEXT PRIMARY KEY,
    claim_id TEXT NOT NULL REFERENCES claims (claim_id),
    county_code TEXT NOT NULL,
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64),
    media_type TEXT NOT NULL CHECK (media_type IN ('jpeg', 'png', 'pdf')),
    size_bytes BIGINT NOT NULL CHECK (size_bytes > 0),
    file_name TEXT NOT NULL,
    description TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_at TEXT NOT NULL,
    request_id TEXT NOT NULL,
    UNIQUE (claim_id, sha256)
);
