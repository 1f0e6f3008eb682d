-- Which server key this database's data was written under: the key itself
-- stays in its file, so a node started with another key can be stopped
-- before it signs or encrypts anything the others cannot read.
CREATE TABLE server_key (
    slot        INTEGER PRIMARY KEY CHECK (slot = 1),
    key_id      TEXT    NOT NULL,
    check_value BYTEA   NOT NULL CHECK (length(check_value) = 32),
    created_at  BIGINT  NOT NULL
);

-- Sign-in form tokens already used, until they would have expired anyway:
-- each form signs in once.
CREATE TABLE spent_sign_in_forms (
    nonce      BYTEA  PRIMARY KEY CHECK (length(nonce) = 16),
    expires_at BIGINT NOT NULL
);
