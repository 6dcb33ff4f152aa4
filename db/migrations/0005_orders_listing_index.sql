-- GET /api/orders lists newest first, optionally per user, paging on (created_at, id).
CREATE INDEX orders_created_id ON orders (created_at DESC, id DESC);
DROP INDEX IF EXISTS orders_user_created;
CREATE INDEX orders_user_created_id ON orders (user_id, created_at DESC, id DESC);
