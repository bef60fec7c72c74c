-- The console's triggers list shows each trigger's last error: the newest delivery-log row with an
-- error or a failing outcome. This partial index holds only those rows, so finding it reads one
-- index entry however many successful rows the trigger has. Its predicate must stay identical to
-- the query's (ingest/registry/delivery_summary.py) for the planner to use it.
CREATE INDEX delivery_log_last_error ON delivery_log (trigger_id, at DESC, log_partition DESC, log_offset DESC)
    WHERE error IS NOT NULL OR outcome IN ('failed', 'dead_lettered', 'filter_error', 'transform_error');
