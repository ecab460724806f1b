-- The tamper-evident audit log (docs/audit-log.md, issue 5): one hash chain
-- per county, appended by every mutating call in the transaction of its
-- effect, under the county's write lock.
--
-- The text columns hold exactly the bytes that were hashed: `at`, `before`
-- and `after` are TEXT, never a timestamptz or jsonb that PostgreSQL would
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
    prev_hash BYTEA NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash BYTEA NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (county_code, seq)
);

-- Append-only, like ledger_entries (and TRUNCATE, which fires no row
-- trigger, is refused too). Whoever can drop these triggers can edit rows;
-- the chain is what shows that they did.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
