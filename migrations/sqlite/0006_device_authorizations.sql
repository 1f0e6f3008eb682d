-- App sign-in requests (the shape of RFC 8628's device authorization grant):
-- an app asks, a signed-in person approves or denies in the web interface,
-- the app polls until it gets its device password, exactly once. The row is
-- the request's only state, so any node can answer any step.
CREATE TABLE device_authorizations (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    -- SHA-256 of the app's device code; the code itself is never stored
    device_code_hash  BLOB    NOT NULL UNIQUE CHECK (length(device_code_hash) = 32),
    -- HMAC of the user code under the server key: short codes hashed
    -- without a key could be recovered from a dump by trying them all
    user_code_hash    BLOB    NOT NULL UNIQUE CHECK (length(user_code_hash) = 32),
    device_name       TEXT    NOT NULL,
    device_type       TEXT    NOT NULL,
    -- SHA-256 of the token the device will get; the token is derived from
    -- the device code when the app collects it, so it is never stored
    token_digest      BLOB    NOT NULL CHECK (length(token_digest) = 32),
    -- who asked, as shown to the person approving
    requested_ip      TEXT,
    requested_user_agent TEXT,
    created_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL,
    -- seconds the app must wait between polls; grows on each poll too soon
    interval_secs     INTEGER NOT NULL,
    last_polled_at    INTEGER,
    status            TEXT    NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'approved', 'denied', 'claimed')),
    -- who approved or denied
    account_id        INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    -- the device the approval created
    device_id         TEXT    REFERENCES devices (id) ON DELETE SET NULL
);

-- The per-address limit counts an address's pending requests.
CREATE INDEX device_authorizations_by_address ON device_authorizations (requested_ip, status);
CREATE INDEX device_authorizations_by_expiry ON device_authorizations (expires_at);
