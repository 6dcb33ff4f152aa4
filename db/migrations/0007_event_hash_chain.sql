-- Tamper evidence: each event stores a SHA-256 over its own content and the hash of
-- its stream's previous event, so editing, deleting or reordering a stored event by
-- hand breaks the chain from that point on, and `orderengine audit` reports it.
-- Computed by a trigger so every writer (the API, workers, COPY in benchmarks) gets it.
-- Events written before this migration have no hash; the chain starts after them.
ALTER TABLE events ADD COLUMN hash bytea;

CREATE FUNCTION event_content(stream_id text, version integer, type text, data jsonb,
                              metadata jsonb, recorded_at timestamptz) RETURNS bytea
LANGUAGE sql STABLE AS $$
    -- jsonb's text form is canonical (key order, spacing); the time in UTC so the
    -- session's TimeZone cannot change it.
    SELECT convert_to(
        stream_id || E'\x1f' || version || E'\x1f' || type || E'\x1f' || data::text || E'\x1f'
        || metadata::text || E'\x1f'
        || to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
        'UTF8')
$$;

CREATE FUNCTION event_chain_hash() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    previous bytea;
BEGIN
    -- Rows inserted earlier by the same statement are visible here, so a multi-event
    -- append chains correctly.
    SELECT hash INTO previous FROM events WHERE stream_id = NEW.stream_id AND version = NEW.version - 1;
    NEW.hash := sha256(coalesce(previous, ''::bytea)
        || event_content(NEW.stream_id, NEW.version, NEW.type, NEW.data, NEW.metadata, NEW.recorded_at));
    RETURN NEW;
END $$;

CREATE TRIGGER events_hash_chain BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION event_chain_hash();
