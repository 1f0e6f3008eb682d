-- latchkey's first PostgreSQL schema; the same model as migrations/sqlite.
-- Never edit a released migration; add a new one.
-- Times are milliseconds since the Unix epoch (UTC).

CREATE TABLE accounts (
    id                 BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- normalised to lower case by the application, so uniqueness is case-insensitive
    email              TEXT    NOT NULL UNIQUE,
    name               TEXT    NOT NULL,
    -- argon2id PHC string; the password itself is never stored
    password_hash      TEXT    NOT NULL,
    enabled            BOOLEAN NOT NULL DEFAULT TRUE,
    two_factor_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at         BIGINT  NOT NULL
);

CREATE TABLE account_permissions (
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    permission TEXT   NOT NULL CHECK (permission IN ('synchronisation', 'admin')),
    PRIMARY KEY (account_id, permission)
);

CREATE TABLE devices (
    -- a string of digits, random
    id                   TEXT   PRIMARY KEY,
    account_id           BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name                 TEXT   NOT NULL,
    device_type          TEXT   NOT NULL,
    -- SHA-256 of the token; the token itself is never stored
    token_digest         BYTEA  NOT NULL CHECK (length(token_digest) = 32),
    created_at           BIGINT NOT NULL,
    last_used_at         BIGINT,
    last_used_ip         TEXT,
    last_used_user_agent TEXT
);

CREATE INDEX devices_by_account ON devices (account_id, created_at);

-- Password-guessing throttle buckets, shared by every node.
CREATE TABLE throttle_buckets (
    key        TEXT             PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT           NOT NULL
);

-- Every change that can invalidate a cached credential (or the device data
-- cached with it) is announced on the channel `latchkey_credentials` by these
-- triggers, so that no writer (node or CLI) can forget. NOTIFY is delivered
-- at commit, and not at all on rollback. Payloads: 'd:<device id>',
-- 'a:<account id>'.
CREATE FUNCTION latchkey_notify_device() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('latchkey_credentials', 'd:' || NEW.id);
    ELSE
        PERFORM pg_notify('latchkey_credentials', 'd:' || OLD.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE FUNCTION latchkey_notify_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('latchkey_credentials', 'a:' || NEW.account_id);
    ELSIF TG_TABLE_NAME = 'accounts' THEN
        PERFORM pg_notify('latchkey_credentials', 'a:' || OLD.id);
    ELSE
        PERFORM pg_notify('latchkey_credentials', 'a:' || OLD.account_id);
    END IF;
    RETURN NULL;
END;
$$;

-- An insert matters too: another node may remember the id as unknown.
CREATE TRIGGER device_inserted AFTER INSERT ON devices
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_device();
CREATE TRIGGER device_deleted AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_device();
-- A rename invalidates nothing, but cached device data shows the name.
CREATE TRIGGER device_changed AFTER UPDATE OF token_digest, account_id, name ON devices
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_device();

CREATE TRIGGER account_state_changed AFTER UPDATE OF enabled, two_factor_enabled ON accounts
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_account();
CREATE TRIGGER account_deleted AFTER DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_account();
CREATE TRIGGER permission_granted AFTER INSERT ON account_permissions
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_account();
CREATE TRIGGER permission_revoked AFTER DELETE ON account_permissions
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_account();
