-- The delivery-log sink deletes rows older than TRIGGERLINE_SINK_DELIVERY_LOG_RETENTION_S in small
-- batches, oldest first; this index finds them without a scan of the whole table.
CREATE INDEX delivery_log_by_at ON delivery_log (at);
