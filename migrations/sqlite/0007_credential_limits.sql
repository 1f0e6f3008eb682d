-- Limits on device passwords (scope, expiry, idle expiry, networks), the
-- overlap of an old token after "Change password", and the last few
-- addresses a device was used from. Times are Unix milliseconds.

ALTER TABLE devices ADD COLUMN scope TEXT NOT NULL DEFAULT 'full'
    CHECK (scope IN ('read', 'full', 'admin'));
ALTER TABLE devices ADD COLUMN expires_at INTEGER;
ALTER TABLE devices ADD COLUMN idle_expiry_days INTEGER;
-- comma-separated CIDR ranges; NULL for none
ALTER TABLE devices ADD COLUMN allowed_networks TEXT;
ALTER TABLE devices ADD COLUMN denied_networks TEXT;
-- when the current token was issued; NULL: at created_at
ALTER TABLE devices ADD COLUMN token_issued_at INTEGER;
-- the token replaced by "Change password", alive until previous_token_until
ALTER TABLE devices ADD COLUMN previous_token_digest BLOB
    CHECK (previous_token_digest IS NULL OR length(previous_token_digest) = 32);
ALTER TABLE devices ADD COLUMN previous_token_until INTEGER;
-- the last distinct client addresses, newest first, comma-separated
ALTER TABLE devices ADD COLUMN recent_ips TEXT;

-- Every limit is cached with the credential: a change must reach every node.
-- A new token is announced by device_changed already: one event is enough.
CREATE TRIGGER device_limits_changed AFTER UPDATE OF scope, expires_at, idle_expiry_days,
    allowed_networks, denied_networks, token_issued_at, previous_token_digest,
    previous_token_until ON devices
    WHEN NEW.token_digest IS OLD.token_digest
BEGIN
    INSERT INTO credential_events (account_id, device_id) VALUES (OLD.account_id, OLD.id);
END;

-- The email and name are cached for forward auth's identity headers.
CREATE TRIGGER account_identity_changed AFTER UPDATE OF email, name ON accounts
BEGIN
    INSERT INTO credential_events (account_id) VALUES (NEW.id);
END;
