-- Password-guessing throttle buckets, kept in the database so every process
-- sharing it counts the same guesses.
CREATE TABLE throttle_buckets (
    key        TEXT    PRIMARY KEY,
    tokens     REAL    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- A new device matters too: a server may remember its id as unknown.
CREATE TRIGGER device_inserted AFTER INSERT ON devices
BEGIN
    INSERT INTO credential_events (account_id, device_id) VALUES (NEW.account_id, NEW.id);
END;
