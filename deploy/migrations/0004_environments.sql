-- Environments: named sets of secrets in a project that triggers may refer to. Values are
-- stored as "key_id:fernet_token", like trigger secrets.
CREATE TABLE environments (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id),
    name        text NOT NULL,
    secrets     jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

CREATE UNIQUE INDEX environments_live_name ON environments (project_id, name) WHERE deleted_at IS NULL;

ALTER TABLE triggers ADD COLUMN environment_id uuid REFERENCES environments (id);
-- The http target's signing secret ("key_id:fernet_token"); published as TARGET_SIGNING_SECRET.
ALTER TABLE triggers ADD COLUMN target_secret text;

CREATE INDEX triggers_live_by_environment ON triggers (environment_id) WHERE deleted_at IS NULL;
-- Keyset paging of a project's live triggers: (created_at, id) is unique and stable.
DROP INDEX triggers_live_by_project;
CREATE INDEX triggers_live_by_project ON triggers (project_id, created_at, id) WHERE deleted_at IS NULL;
