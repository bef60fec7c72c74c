-- Project API keys. Only a SHA-256 digest of each key is stored: keys are 256-bit random
-- tokens, so a fast digest is enough to make a leaked table useless, and lookups stay one
-- index probe per request.
CREATE TABLE api_keys (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id),
    key_hash    text NOT NULL UNIQUE,
    -- The key's first characters, so an operator can tell keys apart without holding them.
    key_prefix  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE INDEX api_keys_by_project ON api_keys (project_id);
