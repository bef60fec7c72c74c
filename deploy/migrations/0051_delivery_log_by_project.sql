-- The console's event search pages a whole project's delivery log newest first, keyed by
-- (at, log_partition, log_offset); this index serves that order and that keyset directly, so a
-- page reads only its own rows however deep it is.
CREATE INDEX delivery_log_by_project
    ON delivery_log (project_id, at DESC, log_partition DESC, log_offset DESC);
