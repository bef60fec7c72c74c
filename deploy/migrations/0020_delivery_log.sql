-- The delivery log in PostgreSQL, written by the delivery-log sink (`python -m dispatchers.sink`)
-- and read by the control-plane API. Each row is one delivery-log record; its topic position is
-- the primary key, so a sink that re-reads records after a restart inserts nothing twice.
-- Ids are text: the log also records decisions about events whose ids are not UUIDs.
CREATE TABLE delivery_log (
    log_partition   integer NOT NULL,
    log_offset      bigint NOT NULL,
    event_id        text NOT NULL,
    trigger_id      text NOT NULL,
    project_id      text NOT NULL,
    stage           text NOT NULL,
    outcome         text NOT NULL,
    at              timestamptz NOT NULL,
    correlation_id  text,
    target_kind     text,
    target_ref      text,
    attempt         integer NOT NULL DEFAULT 0,
    reason          text,
    http_status     integer,
    error           text,
    latency_ms      double precision,
    replay          boolean NOT NULL DEFAULT false,
    received_at     timestamptz,
    PRIMARY KEY (log_partition, log_offset)
);

-- GET /triggers/{id}/deliveries pages newest first; GET /events/{id} reads one event in order.
CREATE INDEX delivery_log_by_trigger ON delivery_log (trigger_id, at DESC, log_partition, log_offset);
CREATE INDEX delivery_log_by_event ON delivery_log (event_id, at);
CREATE INDEX delivery_log_by_correlation ON delivery_log (correlation_id, at DESC);
