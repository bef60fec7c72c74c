-- Console sessions that were signed out before they expired. A session lives in its sealed
-- cookie only, so a copy of the cookie would outlive sign-out without this: each row holds the
-- SHA-256 digest of a signed-out session's CSRF token (its random, secret id) until the moment
-- the session would have expired anyway, and is deleted after that.
CREATE TABLE console_sign_outs (
    session_digest  bytea PRIMARY KEY,
    expires_at      timestamptz NOT NULL
);
CREATE INDEX console_sign_outs_by_expiry ON console_sign_outs (expires_at);
