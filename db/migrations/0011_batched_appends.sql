-- Appends in one round trip, many at a time.
--
-- append_events() takes the table lock and inserts, in one statement the client sends in
-- autocommit: the lock is held only while the server inserts and commits, never across a
-- client's round trips, and one call carries the appends of many streams (each process
-- batches what its writers append meanwhile, adapters/postgres_event_store.py). Each row
-- says which version its stream must be at before the append; rows of a stream that has
-- moved on are not inserted, and the caller reports a ConcurrencyConflict for them. A
-- call never holds two appends to one stream (the client puts the second in the next
-- call), so a row's version is its expected version plus its place among its stream's rows.
-- The appends come as one JSON array of {"s": stream, "x": expected version, "t": type,
-- "d": data, "m": metadata}, one element per event: one parameter the client encodes in
-- one call, and data and metadata arrive as jsonb already. (Five text arrays cost the
-- client more than the insert costs the server: each element is escaped in Python.)
--
-- PL/pgSQL, not SQL: a SQL function's body is parsed (its INSERT locking the table in ROW
-- EXCLUSIVE mode) before the LOCK runs, and two such calls deadlock upgrading their locks.
CREATE FUNCTION append_events(appends jsonb)
RETURNS TABLE (stream_id text, version integer, "position" bigint, recorded_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    LOCK TABLE events IN EXCLUSIVE MODE;
    RETURN QUERY
    INSERT INTO events AS e (stream_id, version, type, data, metadata)
    SELECT r.s, r.x + r.n, r.t, r.d, r.m
    FROM (
        SELECT u.j->>'s' AS s, (u.j->>'x')::integer AS x, u.j->>'t' AS t, u.j->'d' AS d,
               u.j->'m' AS m, u.i, row_number() OVER (PARTITION BY u.j->>'s' ORDER BY u.i)::integer AS n
        FROM jsonb_array_elements(appends) WITH ORDINALITY AS u(j, i)
    ) AS r
    WHERE (SELECT coalesce(max(l.version), 0) FROM events l WHERE l.stream_id = r.s) = r.x
    ORDER BY r.i
    ON CONFLICT DO NOTHING
    RETURNING e.stream_id, e.version, e.position, e.recorded_at;
END $$;

-- Notify only when a log follower may be asleep. A follower that finds nothing new marks
-- itself waiting here, then looks at the log once more under a SHARE lock (which waits
-- for every append in flight), and only then sleeps on LISTEN events: an append that
-- committed before that look is seen by it, and one that commits after it finds the mark
-- (it reads it while holding the table lock) and notifies. A busy follower never sleeps,
-- so at load no append pays for NOTIFY, which holds a cluster-wide lock through its commit.
CREATE TABLE log_listeners (
    name    text PRIMARY KEY,
    waiting boolean NOT NULL DEFAULT false
);

CREATE OR REPLACE FUNCTION notify_events() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM log_listeners WHERE waiting) THEN
        PERFORM pg_notify('events', '');
    END IF;
    RETURN NULL;
END $$;
