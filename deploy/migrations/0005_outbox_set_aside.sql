-- Outbox rows the relay can never publish (a record over the topic's bound, a record Kafka
-- refuses) are set aside with their error instead of blocking every later row.
ALTER TABLE trigger_config_outbox ADD COLUMN failed_at timestamptz;
ALTER TABLE trigger_config_outbox ADD COLUMN error text;

DROP INDEX trigger_config_outbox_pending;
CREATE INDEX trigger_config_outbox_pending ON trigger_config_outbox (seq)
    WHERE published_at IS NULL AND failed_at IS NULL;
-- Pruning finds old published and old set-aside rows without a scan.
CREATE INDEX trigger_config_outbox_published ON trigger_config_outbox (published_at)
    WHERE published_at IS NOT NULL;
CREATE INDEX trigger_config_outbox_set_aside ON trigger_config_outbox (failed_at)
    WHERE failed_at IS NOT NULL;
