-- Limit orders wait for their price and expire; the read model shows both.
ALTER TABLE orders ADD COLUMN expires_at timestamptz;
ALTER TABLE orders ADD COLUMN best_price numeric;

-- The scheduler's re-quote and expiry jobs look orders up by status.
CREATE INDEX orders_waiting_expiry ON orders (expires_at) WHERE status IN ('pending', 'waiting');
