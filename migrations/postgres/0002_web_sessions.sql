-- Web interface sessions. Several nodes may serve one person, so sessions
-- live in the database, not in a node's memory.
CREATE TABLE web_sessions (
    -- a handle for "sign out this session"; not a secret
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- SHA-256 of the random id in the cookie; the id itself is never stored
    id_hash      BYTEA  NOT NULL UNIQUE CHECK (length(id_hash) = 32),
    account_id   BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- compared with the token every form carries
    csrf_secret  BYTEA  NOT NULL CHECK (length(csrf_secret) = 32),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    ip           TEXT,
    user_agent   TEXT,
    -- one-shot message for the next page; never a secret
    flash        TEXT,
    -- one-shot secret for the next page (a new device password), encrypted
    -- with a key derived from the cookie's id, which the server does not keep
    reveal       BYTEA
);

CREATE INDEX web_sessions_by_account ON web_sessions (account_id);
