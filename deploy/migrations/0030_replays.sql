-- Replays: a time range of raw events, optionally narrowed to triggers or event ids, sent
-- through the pipeline again. The row is what operators list and control. What a replay has
-- already sent is recorded in Kafka, in the same transaction as the copies (the offsets of the
-- replay's own consumer group), so a resumed replay never sends an event twice; the counts
-- here mirror it after every transaction.
CREATE TABLE replays (
    id                uuid PRIMARY KEY,
    project_id        uuid NOT NULL REFERENCES projects (id),
    -- "api-key:<key prefix>" or "cli:<os user>".
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    from_time         timestamptz NOT NULL,
    to_time           timestamptz NOT NULL,
    -- NULL selects every trigger of the project; event ids narrow further.
    trigger_ids       uuid[],
    event_ids         text[],
    -- The alternate target for this replay only (a Target record), or NULL for each trigger's own.
    target            jsonb,
    rate_per_s        double precision NOT NULL,
    state             text NOT NULL DEFAULT 'pending'
                      CHECK (state IN ('pending', 'running', 'cancelled', 'finished', 'failed')),
    cancel_requested  boolean NOT NULL DEFAULT false,
    error             text,
    -- Raw records in the range, read so far, and selected (sent) so far.
    to_scan           bigint NOT NULL DEFAULT 0,
    scanned           bigint NOT NULL DEFAULT 0,
    selected          bigint NOT NULL DEFAULT 0,
    -- Whoever runs the replay holds a lease and renews it; an expired lease on an unfinished
    -- replay means its runner died, and another one resumes it.
    lease_owner       text,
    lease_until       timestamptz,
    started_at        timestamptz,
    finished_at       timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX replays_by_project ON replays (project_id, created_at DESC);
CREATE INDEX replays_unfinished ON replays (created_at) WHERE state IN ('pending', 'running');

ALTER TABLE delivery_log ADD COLUMN replay_id text;
CREATE INDEX delivery_log_by_replay ON delivery_log (replay_id, stage, outcome)
    WHERE replay_id IS NOT NULL;
