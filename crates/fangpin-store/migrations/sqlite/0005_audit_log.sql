-- The tamper-evident audit log (docs/audit-log.md, issue 5): one hash chain
-- per county, appended by every mutating call in the transaction of its
-- effect, under the county's write lock.
--
-- The text columns hold exactly the bytes that were hashed: `at`, `before`
-- and `after` are TEXT, never a timestamp or JSON type the database would
-- re-render. `prev_hash` and `hash` are the 32 raw bytes of a SHA-256.
-- No foreign key to `counties`: the chain is evidence and must outlive any
-- change to the rows it describes.
CREATE TABLE audit_log (
    county_code TEXT NOT NULL,
    seq BIGINT NOT NULL CHECK (seq >= 1),
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    rpc TEXT NOT NULL,
    object TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    request_id TEXT NOT NULL,
    prev_hash BLOB NOT NULL CHECK (length(prev_hash) = 32),
    hash BLOB NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (county_code, seq)
);

-- Append-only, like ledger_entries. Whoever can drop these triggers can
-- edit rows; the chain is what shows that they did.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
