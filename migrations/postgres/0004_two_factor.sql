-- Two-factor authentication. The TOTP secret is stored encrypted under the
-- server key (`v1:<key id>:<nonce and ciphertext>`), never in the clear;
-- `last_step` is the latest 30-second step whose code was accepted, and
-- only ever moves forward (one conditional UPDATE), so no code is accepted
-- twice. A row with `confirmed = FALSE` is an enrolment not yet finished.
CREATE TABLE two_factor_secrets (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret     TEXT    NOT NULL,
    last_step  BIGINT  NOT NULL DEFAULT 0,
    confirmed  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL
);

-- Recovery codes, as keyed digests; a code is used up by deleting its row.
CREATE TABLE recovery_codes (
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    digest     BYTEA   NOT NULL CHECK (length(digest) = 32),
    PRIMARY KEY (account_id, digest)
);

-- Sign-ins waiting for their second step: the browser holds the key in a
-- cookie, the row only its digest. Any node can finish one.
CREATE TABLE pending_sign_ins (
    id_hash    BYTEA   PRIMARY KEY CHECK (length(id_hash) = 32),
    account_id BIGINT  NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    failures   BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX pending_sign_ins_expiry ON pending_sign_ins (expires_at);

-- Since when the configured --require-two-factor level has been in force:
-- the grace period counts from then (or from an account's creation).
CREATE TABLE two_factor_requirement (
    slot  INTEGER PRIMARY KEY CHECK (slot = 1),
    level TEXT    NOT NULL,
    since BIGINT  NOT NULL
);
