-- Personal data sealed at rest (docs/personal-data.md, issue 5): ID numbers
-- and bank accounts are stored only encrypted (XChaCha20-Poly1305, bound to
-- column and row), beside a masked form for display; persons are found by a
-- keyed hash of the ID number (HMAC-SHA256) instead of its digits. The key
-- is the server's; the database holds only bytes and the key's check value.
--
-- A migration cannot seal: it does not know the key. So it refuses to run
-- over enrolled households instead of dropping their numbers. fangpin had no
-- production data when this landed; a database with households must be
-- exported and enrolled again into a fresh one (docs/personal-data.md).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM households) THEN
        RAISE EXCEPTION 'migration 0006 (personal data) refuses to run: households are enrolled with plaintext ID numbers and bank accounts, which a migration cannot seal without the key; enrol them again into a fresh database (docs/personal-data.md)';
    END IF;
END
$$;

-- households is referenced by other tables, so it is altered in place (it
-- is empty, above, so the new NOT NULL columns need no default); persons is
-- referenced by none and is rebuilt with its new key.
DROP TABLE persons;
ALTER TABLE households
    DROP COLUMN head_id_number,
    DROP COLUMN bank_account,
    -- Sealed values: version (1) + nonce (24) + ciphertext + tag (16), at most
    -- 64 plaintext bytes. The masked forms are checked to hold no full
    -- number: an ID number keeps its first six and last four characters, an
    -- account its last four digits.
    ADD COLUMN head_id_masked TEXT NOT NULL
        CHECK (length(head_id_masked) = 18 AND substr(head_id_masked, 7, 8) = '********'),
    ADD COLUMN head_id_sealed BYTEA NOT NULL CHECK (octet_length(head_id_sealed) BETWEEN 41 AND 105),
    ADD COLUMN bank_account_masked TEXT NOT NULL
        CHECK (length(replace(bank_account_masked, '*', '')) <= 4),
    ADD COLUMN bank_account_sealed BYTEA NOT NULL CHECK (octet_length(bank_account_sealed) BETWEEN 41 AND 105);

-- A person is insured once per policy year, wherever enrolled: the keyed
-- hash of the ID number is unique per year.
CREATE TABLE persons (
    policy_year BIGINT NOT NULL,
    id_hash BYTEA NOT NULL CHECK (octet_length(id_hash) = 32),
    id_sealed BYTEA NOT NULL CHECK (octet_length(id_sealed) BETWEEN 41 AND 105),
    household_id TEXT NOT NULL REFERENCES households (household_id),
    county_code TEXT NOT NULL,
    name TEXT NOT NULL,
    relation TEXT NOT NULL,
    PRIMARY KEY (policy_year, id_hash)
);
CREATE INDEX persons_by_county ON persons (county_code, policy_year);

-- Which key sealed this database: HKDF(key, "key check"), written by the
-- first server to start and compared by every later one, so a wrong key
-- stops the server at start-up instead of failing every lookup.
CREATE TABLE personal_data_key (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    key_check BYTEA NOT NULL CHECK (octet_length(key_check) = 32),
    created_at TEXT NOT NULL
);
