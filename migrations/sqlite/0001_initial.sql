-- latchkey's first schema. Never edit a released migration; add a new one.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- normalised to lower case by the application, so uniqueness is case-insensitive
    email              TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    -- argon2id PHC string; the password itself is never stored
    password_hash      TEXT    NOT NULL,
    enabled            INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    two_factor_enabled INTEGER NOT NULL DEFAULT 0 CHECK (two_factor_enabled IN (0, 1)),
    created_at         INTEGER NOT NULL
);

CREATE TABLE account_permissions (
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    permission TEXT    NOT NULL CHECK (permission IN ('synchronisation', 'admin')),
    PRIMARY KEY (account_id, permission)
) WITHOUT ROWID;

CREATE TABLE devices (
    -- a string of digits, random
    id                   TEXT    PRIMARY KEY,
    account_id           INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                 TEXT    NOT NULL,
    device_type          TEXT    NOT NULL,
    -- SHA-256 of the token; the token itself is never stored
    token_digest         BLOB    NOT NULL CHECK (length(token_digest) = 32),
    created_at           INTEGER NOT NULL,
    last_used_at         INTEGER,
    last_used_ip         TEXT,
    last_used_user_agent TEXT
);

CREATE INDEX devices_by_account ON devices (account_id, created_at);

-- Every change that can invalidate a cached credential (or the device data
-- cached with it), written by triggers
-- so that no writer (server or CLI) can forget. Servers poll it when SQLite's
-- data_version says another connection committed.
CREATE TABLE credential_events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER,
    device_id  TEXT,
    created_at INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER))
);

CREATE TRIGGER device_deleted AFTER DELETE ON devices
BEGIN
    INSERT INTO credential_events (account_id, device_id) VALUES (OLD.account_id, OLD.id);
END;

-- A rename invalidates nothing, but cached device data shows the name.
CREATE TRIGGER device_changed AFTER UPDATE OF token_digest, account_id, name ON devices
BEGIN
    INSERT INTO credential_events (account_id, device_id) VALUES (OLD.account_id, OLD.id);
END;

CREATE TRIGGER account_state_changed AFTER UPDATE OF enabled, two_factor_enabled ON accounts
BEGIN
    INSERT INTO credential_events (account_id) VALUES (NEW.id);
END;

CREATE TRIGGER account_deleted AFTER DELETE ON accounts
BEGIN
    INSERT INTO credential_events (account_id) VALUES (OLD.id);
END;

CREATE TRIGGER permission_granted AFTER INSERT ON account_permissions
BEGIN
    INSERT INTO credential_events (account_id) VALUES (NEW.account_id);
END;

CREATE TRIGGER permission_revoked AFTER DELETE ON account_permissions
BEGIN
    INSERT INTO credential_events (account_id) VALUES (OLD.account_id);
END;
