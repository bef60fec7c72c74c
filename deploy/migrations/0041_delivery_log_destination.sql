-- Each step of an event's journey names the trigger's destination it belongs to; NULL for the
-- steps of the whole event (the trigger's own filter, a duplicate, an ignored event) and for
-- rows written before triggers had destinations (their one destination was "default").
ALTER TABLE delivery_log ADD COLUMN destination text;
