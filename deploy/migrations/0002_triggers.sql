-- Trigger instances and the outbox that carries every committed change to the
-- trigger-config topic. A change and its outbox row commit in one transaction, so the
-- topic can never miss a change or see one that was rolled back.

CREATE TABLE triggers (
    id          uuid PRIMARY KEY,
    project_id  uuid NOT NULL REFERENCES projects (id),
    definition  text NOT NULL,
    name        text NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused')),
    target      jsonb NOT NULL,
    config      jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- name -> "key_id:fernet_token"; plaintext never reaches the database.
    secrets     jsonb NOT NULL DEFAULT '{}'::jsonb,
    revision    bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

-- Names are unique among live triggers only, so deleting a trigger frees its name.
CREATE UNIQUE INDEX triggers_live_name ON triggers (project_id, name) WHERE deleted_at IS NULL;
CREATE INDEX triggers_live_by_project ON triggers (project_id, created_at) WHERE deleted_at IS NULL;

CREATE TABLE trigger_config_outbox (
    seq          bigserial PRIMARY KEY,
    trigger_id   uuid NOT NULL,
    -- The encoded TriggerConfig record as committed; NULL publishes a tombstone.
    payload      bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX trigger_config_outbox_pending ON trigger_config_outbox (seq) WHERE published_at IS NULL;

-- Wakes the relay at commit instead of making it poll.
CREATE FUNCTION notify_trigger_config_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('trigger_config_outbox', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER trigger_config_outbox_notify
    AFTER INSERT ON trigger_config_outbox
    FOR EACH STATEMENT EXECUTE FUNCTION notify_trigger_config_outbox();
