-- The re-driver looks for executing orders that have not moved for a while.
CREATE INDEX orders_executing_updated ON orders (updated_at)
    WHERE status IN ('pending', 'routing', 'building', 'submitted');
