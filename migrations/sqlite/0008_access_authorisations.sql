-- API access authorisations: credentials of services, belonging to no person.
-- The same limits and token columns as devices. Times are Unix milliseconds.

CREATE TABLE access_authorisations (
    -- a string of digits, random
    id                    TEXT    PRIMARY KEY,
    name                  TEXT    NOT NULL,
    description           TEXT    NOT NULL DEFAULT '',
    -- who made it, as named then; NULL: the command line. Not a foreign key:
    -- it outlives the account.
    created_by            TEXT,
    created_at            INTEGER NOT NULL,
    enabled               INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    -- SHA-256 of the token; the token itself is never stored
    token_digest          BLOB    NOT NULL CHECK (length(token_digest) = 32),
    token_issued_at       INTEGER NOT NULL,
    previous_token_digest BLOB
        CHECK (previous_token_digest IS NULL OR length(previous_token_digest) = 32),
    previous_token_until  INTEGER,
    scope                 TEXT    NOT NULL DEFAULT 'full' CHECK (scope IN ('read', 'full', 'admin')),
    expires_at            INTEGER,
    idle_expiry_days      INTEGER,
    allowed_networks      TEXT,
    denied_networks       TEXT,
    last_used_at          INTEGER,
    last_used_ip          TEXT,
    last_used_user_agent  TEXT,
    recent_ips            TEXT
);

CREATE INDEX access_authorisations_by_creation ON access_authorisations (created_at, id);

-- Announced like devices, in their own column: an access authorisation's
-- id is not a device's.
ALTER TABLE credential_events ADD COLUMN access_id TEXT;

-- An insert matters too: another node may remember the id as unknown.
CREATE TRIGGER access_inserted AFTER INSERT ON access_authorisations
BEGIN
    INSERT INTO credential_events (access_id) VALUES (NEW.id);
END;

CREATE TRIGGER access_deleted AFTER DELETE ON access_authorisations
BEGIN
    INSERT INTO credential_events (access_id) VALUES (OLD.id);
END;

-- Everything cached with the credential; last-use columns are not.
CREATE TRIGGER access_changed AFTER UPDATE OF name, description, enabled, token_digest,
    token_issued_at, previous_token_digest, previous_token_until, scope, expires_at,
    idle_expiry_days, allowed_networks, denied_networks ON access_authorisations
BEGIN
    INSERT INTO credential_events (access_id) VALUES (OLD.id);
END;
