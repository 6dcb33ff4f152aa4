-- A user's WebSocket stream reads the history of all their orders from the log:
-- the orders they placed are found by the user in each order's first event.
CREATE INDEX events_user_streams ON events ((data->>'user_id'), stream_id) WHERE version = 1;
