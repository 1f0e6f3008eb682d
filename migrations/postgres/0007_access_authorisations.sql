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
    created_at            BIGINT  NOT NULL,
    enabled               BOOLEAN NOT NULL DEFAULT TRUE,
    -- SHA-256 of the token; the token itself is never stored
    token_digest          BYTEA   NOT NULL CHECK (length(token_digest) = 32),
    token_issued_at       BIGINT  NOT NULL,
    previous_token_digest BYTEA
        CHECK (previous_token_digest IS NULL OR length(previous_token_digest) = 32),
    previous_token_until  BIGINT,
    scope                 TEXT    NOT NULL DEFAULT 'full' CHECK (scope IN ('read', 'full', 'admin')),
    expires_at            BIGINT,
    idle_expiry_days      BIGINT,
    allowed_networks      TEXT,
    denied_networks       TEXT,
    last_used_at          BIGINT,
    last_used_ip          TEXT,
    last_used_user_agent  TEXT,
    recent_ips            TEXT
);

CREATE INDEX access_authorisations_by_creation ON access_authorisations (created_at, id);

-- Announced on the same channel as devices, as 's:<id>': an access
-- authorisation's id is not a device's.
CREATE FUNCTION latchkey_notify_access() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('latchkey_credentials', 's:' || NEW.id);
    ELSE
        PERFORM pg_notify('latchkey_credentials', 's:' || OLD.id);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER access_inserted AFTER INSERT ON access_authorisations
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_access();
CREATE TRIGGER access_deleted AFTER DELETE ON access_authorisations
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_access();
-- Everything cached with the credential; last-use columns are not.
CREATE TRIGGER access_changed AFTER UPDATE OF name, description, enabled, token_digest,
    token_issued_at, previous_token_digest, previous_token_until, scope, expires_at,
    idle_expiry_days, allowed_networks, denied_networks ON access_authorisations
    FOR EACH ROW EXECUTE FUNCTION latchkey_notify_access();
