-- Limits on device passwords (scope, expiry, idle expiry, networks), the
-- overlap of an old token after "Change password", and the last few
-- addresses a device was used from. Times are Unix milliseconds.

ALTER TABLE devices
    ADD COLUMN scope TEXT NOT NULL DEFAULT 'full' CHECK (scope IN ('read', 'full', 'admin')),
    ADD COLUMN expires_at BIGINT,
    ADD COLUMN idle_expiry_days BIGINT,
    -- comma-separated CIDR ranges; NULL for none
    ADD COLUMN allowed_networks TEXT,
    ADD COLUMN denied_networks TEXT,
    -- when the current token was issued; NULL: at created_at
    ADD COLUMN token_issued_at BIGINT,
    -- the token replaced by "Change password", alive until previous_token_until
    ADD COLUMN previous_token_digest BYTEA
        CHECK (previous_token_digest IS NULL OR length(previous_token_digest) = 32),
    ADD COLUMN previous_token_until BIGINT,
    -- the last distinct client addresses, newest first, comma-separated
    ADD COLUMN recent_ips TEXT;

-- Every limit is cached with the credential: a change must reach every node.
CREATE TRIGGER device_limits_changed AFTER UPDATE OF scope, expires_at, idle_expiry_days,
    allowed_networks, denied_networks, token_issued_at, previous_token_digest,
    previous_token_until ON devices
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_device();

-- The email and name are cached for forward auth's identity headers.
CREATE FUNCTION latchkey_notify_account_identity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latchkey_credentials', 'a:' || NEW.id);
    RETURN NULL;
END;
$$;
CREATE TRIGGER account_identity_changed AFTER UPDATE OF email, name ON accounts
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_account_identity();
