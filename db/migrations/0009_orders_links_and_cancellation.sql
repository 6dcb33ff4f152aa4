-- The orders read model gains the transaction's explorer link (recorded by the venue in
-- OrderSubmitted.explorer_url) and who cancelled an order and why (OrderCancelled).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS explorer_url text;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS cancel_reason text;
ALTER TABLE orders ADD COLUMN IF NOT EXISTS cancelled_by text;

-- Rows projected before this migration: fill them from the log, as the projection would
-- now, so `orderengine audit` finds nothing to report. (Submissions recorded before links
-- existed have none: their explorer_url stays null, as the fold gives.)
UPDATE orders o SET cancel_reason = e.data ->> 'reason', cancelled_by = e.data ->> 'by'
FROM events e
WHERE e.stream_id = o.id::text AND e.type = 'OrderCancelled';

UPDATE orders o SET explorer_url = e.data ->> 'explorer_url'
FROM events e
WHERE e.stream_id = o.id::text AND e.type = 'OrderSubmitted' AND e.data ->> 'explorer_url' IS NOT NULL;
