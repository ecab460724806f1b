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
CREATE TABLE personal_data_migration_guard (households BIGINT NOT NULL);
CREATE TRIGGER personal_data_migration_guard_refuse BEFORE INSERT ON personal_data_migration_guard
WHEN NEW.households > 0
BEGIN
    SELECT RAISE(ABORT, 'migration 0006 (personal data) refuses to run: households are enrolled with plaintext ID numbers and bank accounts, which a migration cannot seal without the key; enrol them again into a fresh database (docs/personal-data.md)');
END;
INSERT INTO personal_data_migration_guard SELECT COUNT(*) FROM households;
DROP TABLE personal_data_migration_guard;

-- Both tables are empty (above), so they are rebuilt rather than altered:
-- SQLite cannot change a primary key or add a NOT NULL column without a
-- default. The tables referencing households are empty too, so dropping it
-- breaks no foreign key, and they refer to the new table by name.
DROP TABLE persons;
DROP TABLE households;

-- Sealed values: version (1) + nonce (24) + ciphertext + tag (16), at most
-- 64 plaintext bytes. The masked forms are checked to hold no full number:
-- an ID number keeps its first six and last four characters, an account
-- its last four digits.
CREATE TABLE households (
    household_id TEXT PRIMARY KEY,
    county_code TEXT NOT NULL REFERENCES counties (county_code),
    policy_year BIGINT NOT NULL,
    village_code TEXT NOT NULL,
    household_type TEXT NOT NULL,
    head_name TEXT NOT NULL,
    head_id_masked TEXT NOT NULL
        CHECK (length(head_id_masked) = 18 AND substr(head_id_masked, 7, 8) = '********'),
    head_id_sealed BLOB NOT NULL CHECK (length(head_id_sealed) BETWEEN 41 AND 105),
    bank_account_masked TEXT NOT NULL
        CHECK (length(replace(bank_account_masked, '*', '')) <= 4),
    bank_account_sealed BLOB NOT NULL CHECK (length(bank_account_sealed) BETWEEN 41 AND 105),
    persons BIGINT NOT NULL CHECK (persons > 0),
    created_at TEXT NOT NULL
);
CREATE INDEX households_by_county ON households (county_code, policy_year);

-- A person is insured once per policy year, wherever enrolled: the keyed
-- hash of the ID number is unique per year.
CREATE TABLE persons (
    policy_year BIGINT NOT NULL,
    id_hash BLOB NOT NULL CHECK (length(id_hash) = 32),
    id_sealed BLOB NOT NULL CHECK (length(id_sealed) BETWEEN 41 AND 105),
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
    key_check BLOB NOT NULL CHECK (length(key_check) = 32),
    created_at TEXT NOT NULL
);
