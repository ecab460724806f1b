-- One row the server rewrites to learn whether the database can take
-- writes again after it ran out of space (disk full): a committed write is
-- the only proof that space was freed. Nothing else reads it.
CREATE TABLE storage_probe (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    written_at TEXT NOT NULL
);
INSERT INTO storage_probe (id, written_at) VALUES (1, '1970-01-01T00:00:00Z');
