-- A trigger delivers to one or more named destinations, each with its own target, rules and
-- limits. Every existing trigger becomes one destination named "default" holding its target
-- and its target's signing secret ("key_id:fernet_token", as before), so it keeps delivering
-- exactly as it did. The stored shape of a destination is the msgspec encoding of
-- schemas.triggers.Destination, every field present.
ALTER TABLE triggers ADD COLUMN destinations jsonb;

UPDATE triggers SET destinations = jsonb_build_array(jsonb_build_object(
    'name', 'default',
    'target', target,
    'filter', NULL,
    'transform', NULL,
    'rate_limit', NULL,
    'max_concurrency', NULL,
    'signing_secret', target_secret
));

ALTER TABLE triggers ALTER COLUMN destinations SET NOT NULL;
-- The registry never stores a trigger without a destination; the data plane relies on it.
ALTER TABLE triggers ADD CONSTRAINT triggers_destinations_non_empty
    -- CASE, not AND: PostgreSQL does not promise to evaluate AND's operands in order, and
    -- jsonb_array_length fails on anything but an array.
    CHECK (CASE WHEN jsonb_typeof(destinations) = 'array'
                THEN jsonb_array_length(destinations) >= 1 ELSE false END);

ALTER TABLE triggers DROP COLUMN target;
ALTER TABLE triggers DROP COLUMN target_secret;
